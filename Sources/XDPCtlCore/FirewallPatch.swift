import CXDPCtlABI

extension FirewallCompiler {
    /// Dead boxes a table may carry before a change needs a full compile: each one costs
    /// a pass over the boxes behind it.
    static let maxDead = 64
    /// Boxes the patch tree may hold before a change needs a full compile.
    static let maxPatchBoxes = 4096

    /// `running` (a table this compiler built, or patched) changed to decide as its rule
    /// list does with the rules at `replaced` (rule positions, default excluded) swapped
    /// for `rules`, and the default action set to `defaultAction`, without compiling the
    /// other rules again. Returns nil when the change is too large to patch, or the table
    /// has no directory; compile the whole rule list then.
    ///
    /// The trees stay as they are. Their RULE nodes get their new priorities (the change
    /// shifts the rules behind it); copies of replaced boxes become dead (they never
    /// match); an action change whose boxes stay alike rewrites the copies' action. The
    /// patch tree is built again from the boxes the trees do not hold: those added since
    /// the full compile, and those behind a dead box that overlap it, which the compile
    /// may have left out of the leaves the dead box covered. The first match over the
    /// trees and the patch tree is then the first match over the new list: a box missing
    /// from a leaf was left out for an earlier box covering its part of the leaf, so a
    /// packet it would decide matches that earlier box too, which decides unless dead.
    public func patch(_ running: FirewallTable, replacing replaced: Range<Int>, with rules: [FirewallRule],
                      slots: [String: UInt32], defaultAction: RuleAction) throws(CapacityError) -> FirewallTable? {
        let dir = running.directory
        guard dir.boxes > Int(DP_FW_MAX_TREES), dir.count > 0, dir.boxes + dir.count + dir.dead <= running.nodes.count else { return nil }
        let old = Boxes(nodes: running.nodes[dir.boxes..<dir.boxes + dir.count])
        let inTrees = running.nodes[dir.boxes..<dir.boxes + dir.count].map { $0.count == 1 }
        // A rule's boxes are consecutive and share its counter slot; the last box is the default.
        var starts: [Int] = []
        for b in 0..<old.count - 1 where b == 0 || old.slot(Int32(b)) != old.slot(Int32(b - 1)) { starts.append(b) }
        starts.append(old.count - 1)
        guard replaced.upperBound < starts.count else { return nil }
        var added = Boxes()
        for rule in rules {
            guard let slot = slots[rule.name] else { preconditionFailure("no counter slot for rule \(rule.name)") }
            added.append(rule, slot: slot)
        }
        // Boxes alike on both sides of the change stay.
        var b0 = starts[replaced.lowerBound], b1 = starts[replaced.upperBound]
        var a0 = 0, a1 = added.count
        while b0 < b1, a0 < a1, old.same(Int32(b0), as: added, Int32(a0), action: true) { b0 += 1; a0 += 1 }
        while b0 < b1, a0 < a1, old.same(Int32(b1 - 1), as: added, Int32(a1 - 1), action: true) { b1 -= 1; a1 -= 1 }
        // Boxes that only change their action keep their places.
        let inPlace = b1 - b0 == a1 - a0 && (0..<b1 - b0).allSatisfy { old.same(Int32(b0 + $0), as: added, Int32(a0 + $0), action: false) }
        let delta = (a1 - a0) - (b1 - b0)
        let after = UInt32(b0 + a1 - a0) // where the box after the change now stands
        func moved(_ p: UInt32) -> UInt32 {
            if p < b0 { return p }
            if p >= b1 { return p == .max ? p : UInt32(Int(p) + delta) }
            return inPlace ? p : after
        }

        // The boxes of the new list, and which of them the trees hold.
        var boxes = Boxes()
        boxes.reserve(old.count + delta)
        var held: [Bool] = []
        held.reserveCapacity(old.count + delta)
        for b in 0..<b0 { boxes.append(from: old, Int32(b)); held.append(inTrees[b]) }
        for a in a0..<a1 { boxes.append(from: added, Int32(a)); held.append(inPlace && inTrees[b0 + a - a0]) }
        for b in b1..<old.count { boxes.append(from: old, Int32(b)); held.append(inTrees[b]) }
        boxes.setDefault(action: defaultAction)

        // Dead boxes: the earlier ones moved, and the replaced ones the trees hold.
        var dead = Array(running.nodes[dir.boxes + dir.count..<dir.boxes + dir.count + dir.dead])
        for i in dead.indices { dead[i].priority = moved(dead[i].priority) }
        if !inPlace {
            for b in b0..<b1 where inTrees[b] {
                var n = old.node(Int32(b))
                n.priority = after
                dead.append(n)
            }
        }
        guard dead.count <= Self.maxDead else { return nil }

        // The trees: priorities moved, replaced boxes dead or with their new action.
        var table = FirewallTable(nodes: Array(running.nodes[0..<dir.boxes]), boxCount: boxes.count, depth: running.depth, largestLeaf: running.largestLeaf)
        let actionOf = (0..<a1 - a0).map { added.action(Int32(a0 + $0)) }
        table.nodes.withUnsafeMutableBufferPointer { nodes in
            for i in nodes.indices where nodes[i].kind == UInt8(DP_FW_NODE_RULE.rawValue) && nodes[i].priority >= b0 {
                let p = Int(nodes[i].priority)
                if p >= b1 {
                    nodes[i].priority = UInt32(p + delta)
                } else if inPlace {
                    if nodes[i].bound(Int(DP_FW_F_FAMILY.rawValue), high: true) != 0 { nodes[i].action = actionOf[p - b0] }
                } else {
                    nodes[i].priority = after
                    nodes[i].setBound(Int(DP_FW_F_FAMILY.rawValue), high: false, 0)
                    nodes[i].setBound(Int(DP_FW_F_FAMILY.rawValue), high: true, 0)
                }
            }
        }
        for t in 0..<Int(DP_FW_PATCH_TREE) { table.nodes[0].setBound(t, high: false, moved(table.nodes[0].bound(t, high: false))) }
        table.nodes[0].action = boxes.action(Int32(boxes.count - 1))

        // The patch tree: boxes the trees do not hold, and those a dead box may have hidden.
        var patchBoxes = Set<Int32>()
        for b in 0..<boxes.count - 1 where !held[b] { patchBoxes.insert(Int32(b)) }
        for d in dead {
            for b in Int(d.priority)..<boxes.count - 1 where held[b] && boxes.overlaps(Int32(b), d) { patchBoxes.insert(Int32(b)) }
            guard patchBoxes.count <= Self.maxPatchBoxes else { return nil }
        }
        table.appendBoxes(boxes, inTrees: { held[$0] }, dead: dead)
        let tree = Int(DP_FW_PATCH_TREE)
        if patchBoxes.isEmpty {
            table.setTree(tree..<tree + 1, best: .max)
            table.nodes[0].count = UInt32((0..<tree).last { table.nodes[0].bound($0, high: false) != .max }.map { $0 + 1 } ?? 0)
        } else {
            let members = patchBoxes.sorted()
            var leaves: [[Int32]: UInt32] = [:]
            do {
                _ = try buildTree(1 + tree, members, boxes, last: true, into: &table, leaves: &leaves)
            } catch {
                return nil
            }
            table.setTree(tree..<tree + 1, best: UInt32(members[0]))
            table.nodes[0].count = UInt32(DP_FW_MAX_TREES)
        }
        return table
    }
}
