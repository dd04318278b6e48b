import CXDPCtlABI

extension FirewallCompiler {
    /// Dead boxes a table may carry before a change needs a full compile: each one costs
    /// a pass over the boxes behind it.
    static let maxDead = 64
    /// Boxes the patch trees may hold before a change needs a full compile.
    static let maxPatchBoxes = 4096

    /// `table` (one this compiler built, or patched) changed to decide as its rule list
    /// does with the rules at `replaced` (rule positions, default excluded) swapped for
    /// `rules`, and the default action set to `defaultAction`, without compiling the
    /// other rules again. nil when the change needs a full compile (see the other form).
    public func patch(_ table: FirewallTable, replacing replaced: Range<Int>, with rules: [FirewallRule],
                      slots: [String: UInt32], defaultAction: RuleAction) -> FirewallTable? {
        var nodes = table.nodes + Array(repeating: dp_fw_node(), count: FirewallTable.capacity(for: table.nodes.count) - table.nodes.count)
        let count = nodes.withUnsafeMutableBufferPointer { buffer in
            patch(buffer, count: table.nodes.count, replacing: replaced, with: rules, slots: slots, defaultAction: defaultAction)
        }
        guard let count else { return nil }
        var patched = FirewallTable(nodes: Array(nodes[..<count]))
        (patched.depth, patched.largestLeaf) = (table.depth, table.largestLeaf)
        return patched
    }

    /// Patches the table held in `nodes[..<count]` in place (up to `nodes.count` nodes), as
    /// the other form describes; returns its new node count, or nil when the change needs
    /// a full compile: too many boxes would be dead or in the patch trees, the patch trees
    /// do not fit, or the table has no directory. `nodes` is then left half-patched.
    ///
    /// The trees stay as they are. Their RULE nodes get their new priorities (the change
    /// shifts the rules behind it); copies of replaced boxes become dead (they never
    /// match); an action change whose boxes stay alike rewrites the copies' action. The
    /// patch trees are built again from the boxes the trees do not hold: those added since
    /// the full compile, and those behind a dead box that overlap it, which the compile
    /// may have left out of the leaves the dead box covered. The first match over the
    /// trees and the patch trees is then the first match over the new list: a box missing
    /// from a leaf was left out for an earlier box covering its part of the leaf, so a
    /// packet it would decide matches that earlier box too, which decides unless dead.
    public func patch(_ nodes: UnsafeMutableBufferPointer<dp_fw_node>, count: Int, replacing replaced: Range<Int>,
                      with rules: [FirewallRule], slots: [String: UInt32], defaultAction: RuleAction) -> Int? {
        let dir = Int(DP_FW_DIR), family = Int(DP_FW_F_FAMILY.rawValue)
        let first = Int(nodes[0].bound(dir, high: false)), boxCount = Int(nodes[0].bound(dir, high: true))
        let deadCount = Int(nodes[0].bound(dir + 1, high: false))
        guard first > Int(DP_FW_MAX_TREES), boxCount > 0, first + boxCount + deadCount <= count else { return nil }
        let box = { (b: Int) in nodes[first + b] }
        // A rule's boxes are consecutive and share its counter slot; the last box is the default.
        var starts: [Int] = []
        for b in 0..<boxCount - 1 where b == 0 || box(b).slot != box(b - 1).slot { starts.append(b) }
        starts.append(boxCount - 1)
        guard replaced.upperBound < starts.count else { return nil }
        var added = Boxes()
        for rule in rules {
            guard let slot = slots[rule.name] else { preconditionFailure("no counter slot for rule \(rule.name)") }
            added.append(rule, slot: slot)
        }
        // Boxes alike on both sides of the change stay.
        var b0 = starts[replaced.lowerBound], b1 = starts[replaced.upperBound]
        var a0 = 0, a1 = added.count
        while b0 < b1, a0 < a1, added.same(Int32(a0), as: box(b0), action: true) { b0 += 1; a0 += 1 }
        while b0 < b1, a0 < a1, added.same(Int32(a1 - 1), as: box(b1 - 1), action: true) { b1 -= 1; a1 -= 1 }
        // Boxes that only change their action keep their places.
        let inPlace = b1 - b0 == a1 - a0 && (0..<b1 - b0).allSatisfy { added.same(Int32(a0 + $0), as: box(b0 + $0), action: false) }
        let delta = (a1 - a0) - (b1 - b0), newBoxCount = boxCount + delta
        let after = UInt32(b0 + a1 - a0) // where the box after the change now stands
        func moved(_ p: UInt32) -> UInt32 {
            if p < b0 { return p }
            if p >= b1 { return p == .max ? p : UInt32(Int(p) + delta) }
            return inPlace ? p : after
        }

        // Dead boxes: the earlier ones moved, and the replaced ones the trees hold.
        var dead = (0..<deadCount).map { nodes[first + boxCount + $0] }
        for i in dead.indices { dead[i].priority = moved(dead[i].priority) }
        if !inPlace {
            for b in b0..<b1 where box(b).count == 1 {
                var n = box(b)
                n.priority = after
                dead.append(n)
            }
        }
        guard dead.count <= Self.maxDead, first + newBoxCount + dead.count <= nodes.count else { return nil }

        // The trees: priorities moved, replaced boxes dead or with their new action.
        for i in 1..<first where nodes[i].kind == UInt8(DP_FW_NODE_RULE.rawValue) && nodes[i].priority >= b0 {
            let p = Int(nodes[i].priority)
            if p >= b1 {
                nodes[i].priority = UInt32(p + delta)
            } else if inPlace {
                if nodes[i].bound(family, high: true) != 0 { nodes[i].action = added.action(Int32(a0 + p - b0)) }
            } else {
                nodes[i].priority = after
                nodes[i].setBound(family, high: false, 0)
                nodes[i].setBound(family, high: true, 0)
            }
        }
        for t in 0..<Int(DP_FW_PATCH_TREE) { nodes[0].setBound(t, high: false, moved(nodes[0].bound(t, high: false))) }
        nodes[0].action = UInt8(defaultAction == .allow ? DP_FW_ALLOW.rawValue : DP_FW_DROP.rawValue)

        // The boxes: the ones behind the change move by delta, the added ones go between.
        let base = nodes.baseAddress! + first
        if delta != 0 {
            UnsafeMutableRawPointer(base + b1 + delta).copyMemory(from: base + b1, byteCount: (boxCount - b1) * MemoryLayout<dp_fw_node>.stride)
            for b in b1 + delta..<newBoxCount { base[b].priority = UInt32(b) }
        }
        for a in a0..<a1 {
            var n = added.node(Int32(a))
            n.priority = UInt32(b0 + a - a0)
            n.count = inPlace ? base[b0 + a - a0].count : 0
            base[b0 + a - a0] = n
        }
        base[newBoxCount - 1].action = nodes[0].action
        for (i, d) in dead.enumerated() { base[newBoxCount + i] = d }

        // The patch trees: boxes the trees do not hold, and those a dead box may have hidden.
        var members = Set<Int>()
        for b in 0..<newBoxCount - 1 where base[b].count == 0 { members.insert(b) }
        for d in dead {
            for b in Int(d.priority)..<newBoxCount - 1 where base[b].count == 1 && base[b].overlaps(d) { members.insert(b) }
            guard members.count <= Self.maxPatchBoxes else { return nil }
        }
        nodes[0].setBound(dir, high: true, UInt32(newBoxCount))
        nodes[0].setBound(dir + 1, high: false, UInt32(dead.count))
        let tree = Int(DP_FW_PATCH_TREE), trees = Int(DP_FW_MAX_TREES) - tree, end = first + newBoxCount + dead.count
        nodes[0].count = UInt32((0..<tree).last { nodes[0].bound($0, high: false) != .max }.map { $0 + 1 } ?? 0)
        nodes[0].setBound(tree, high: false, .max)
        nodes[0].setBound(tree + 1, high: false, .max)
        guard !members.isEmpty else { return end }
        // Built on their own (nodes 0 and 1 their roots), then moved behind the dead boxes;
        // what the first cannot separate goes to the second.
        var patchTrees = FirewallTable(nodes: Array(repeating: dp_fw_node(), count: trees), boxCount: 0, depth: 0, largestLeaf: 0)
        let boxes = Boxes(rules: members.sorted().map { base[$0] })
        var leaves: [[Int32]: UInt32] = [:]
        var rules = (0..<Int32(boxes.count)).map { $0 }
        // Cuts that leave few children empty, no more nodes than the table has room for,
        // and few copies: the patch trees mix rules of every shape, so the wide ones go
        // to the second tree rather than into many of the first one's leaves.
        var compact = self
        compact.minOccupancy = min(minOccupancy, 4)
        compact.maxCopies = min(maxCopies, 64)
        compact.maxNodes = nodes.count - end + trees
        for t in 0..<trees where !rules.isEmpty {
            let best = boxes.node(rules[0]).priority
            do { rules = try compact.buildTree(t, rules, boxes, last: t == trees - 1, into: &patchTrees, leaves: &leaves) } catch { return nil }
            nodes[0].setBound(tree + t, high: false, best)
            nodes[0].setBound(tree + t, high: true, UInt32(1 + tree + t))
            nodes[0].count = UInt32(tree + t + 1)
        }
        for (k, var n) in patchTrees.nodes.enumerated() {
            if n.kind == UInt8(DP_FW_NODE_CUT.rawValue) || n.kind == UInt8(DP_FW_NODE_LEAF.rawValue) { n.base += UInt32(end - trees) }
            nodes[k < trees ? 1 + tree + k : end + k - trees] = n
        }
        return end + patchTrees.nodes.count - trees
    }
}
