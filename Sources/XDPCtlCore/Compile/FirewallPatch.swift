import CXDPCtlABI

extension FirewallCompiler {
    /// Dead boxes a table may carry before a change needs a full compile: each one costs
    /// a pass over the boxes behind it.
    static let maxDead = 64

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
    /// the full compile, and those behind a dead box that the compile may have left out of
    /// the leaves the dead box covered (see deadCopies). The first match over the
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

        // The trees: priorities moved (a leaf's is its first rule's), replaced boxes dead or
        // with their new action.
        let rule = UInt8(DP_FW_NODE_RULE.rawValue), leaf = UInt8(DP_FW_NODE_LEAF.rawValue)
        for i in 1..<first where (nodes[i].kind == rule || nodes[i].kind == leaf) && nodes[i].priority >= b0 {
            let p = Int(nodes[i].priority)
            if p >= b1 || nodes[i].kind == leaf {
                nodes[i].priority = moved(nodes[i].priority)
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
            if inPlace { (n.count, n.shift, n.field) = (base[b0 + a - a0].count, base[b0 + a - a0].shift, base[b0 + a - a0].field) }
            base[b0 + a - a0] = n
        }
        base[newBoxCount - 1].action = nodes[0].action
        for (i, d) in dead.enumerated() { base[newBoxCount + i] = d }

        // The patch trees: boxes the trees do not hold, and those a dead box may have hidden.
        var members = Set<Int>()
        for b in 0..<newBoxCount - 1 where base[b].count == 0 { members.insert(b) }
        let roots = (0..<Int(DP_FW_PATCH_TREE)).filter { nodes[0].bound($0, high: false) != .max }
        for (leaf, tree, part, from) in Self.deadCopies(nodes, treeNodes: first, roots: roots, dead: dead) {
            // A dead copy has the priority of the box now after it: only live copies hold boxes.
            let copies = Int(nodes[leaf].base)..<Int(nodes[leaf].base) + Int(nodes[leaf].count)
            let held = Set(copies.filter { nodes[$0].bound(family, high: true) != 0 }.map { Int(nodes[$0].priority) })
            // Only boxes the dead one can have hidden here (see deadCopies); 0: not recorded.
            let leafTree = UInt8(1 + tree), (deadEntry, deadHome) = (part.shift, part.field)
            for b in from..<newBoxCount - 1 where base[b].count == 1 && !held.contains(b) && base[b].overlaps(part) {
                let home = base[b].field
                if home == leafTree || (deadHome == leafTree && deadEntry <= home && home < leafTree) || home == 0 || deadHome == 0 {
                    members.insert(b)
                }
            }
            guard members.count <= maxPatchBoxes else { return nil }
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

    /// Where the trees may have left a box out for a dead one: each leaf holding a copy of
    /// a dead box, the part of that box the leaf's region holds, and the dead box's
    /// priority. The compiler leaves box B out of a node only where an earlier box it
    /// keeps there holds all of B's part of the node's region; a dead box D that did so
    /// for B at some point x (x in B and in D) is, in the tree D ended up in, copied into
    /// the leaf whose region holds x, unless an earlier box holds x there, which then
    /// decides x as D did. So B needs the patch trees only if it is not in such a leaf and
    /// meets D's part of the leaf's region: fewer than all boxes after D that meet D.
    /// And only if B and D met in a tree: B's home (the tree that holds it in full) is the
    /// leaf's, or, when the leaf is in D's home, B's home is one D passed through before
    /// (from its entry tree on); a box of any other tree was never left out for D. Of 40
    /// deletes spread over 100,000 firewall-shaped rules, all patch (11 did when every
    /// box after D that met D was restored, 20 when trees were not looked at).
    ///
    /// The regions are walked level by level from the roots, into the children that meet a
    /// dead box and lead to a leaf holding a dead copy; a node reached on several paths
    /// (children that share a node) gets the bounding box of their regions, which only
    /// adds boxes to check. The trees are nodes 1..<treeNodes.
    static func deadCopies(_ nodes: UnsafeMutableBufferPointer<dp_fw_node>, treeNodes: Int, roots: [Int], dead: [dp_fw_node])
        -> [(leaf: Int, tree: Int, part: dp_fw_node, from: Int)] {
        guard !dead.isEmpty else { return [] }
        let fields = Int(DP_FW_NFIELDS.rawValue), family = Int(DP_FW_F_FAMILY.rawValue)
        let deadAt = Dictionary(grouping: dead.indices, by: { dead[$0].priority })
        // Which nodes lead to a leaf holding a dead copy, children first (a cut's children
        // come after it), so the walk skips the rest: a broad dead box meets most of a tree.
        var leadsToDead = [Bool](repeating: false, count: treeNodes)
        for i in (1..<treeNodes).reversed() {
            let n = nodes[i], base = Int(n.base)
            if n.kind == UInt8(DP_FW_NODE_LEAF.rawValue) {
                leadsToDead[i] = (base..<base + Int(n.count)).contains { nodes[$0].bound(family, high: true) == 0 && deadAt[nodes[$0].priority] != nil }
            } else if n.kind == UInt8(DP_FW_NODE_CUT.rawValue) {
                let children = base..<base + (1 << Int(n.bits)) + (n.guard_mask != 0 ? 1 : 0)
                leadsToDead[i] = children.contains { $0 < treeNodes && leadsToDead[$0] }
            }
        }
        var everything = dp_fw_node()
        for f in 0..<fields { everything.setBound(f, high: true, .max) }
        func union(_ a: dp_fw_node?, _ b: dp_fw_node) -> dp_fw_node {
            guard var u = a else { return b }
            for f in 0..<fields {
                u.setBound(f, high: false, min(u.bound(f, high: false), b.bound(f, high: false)))
                u.setBound(f, high: true, max(u.bound(f, high: true), b.bound(f, high: true)))
            }
            return u
        }
        // Node index: (tree, region). Trees share no cut or leaf nodes.
        var level = Dictionary(uniqueKeysWithValues: roots.map { (Int(nodes[0].bound($0, high: true)), ($0, everything)) }.filter { leadsToDead[$0.0] })
        var out: [(leaf: Int, tree: Int, part: dp_fw_node, from: Int)] = []
        for _ in 0...Int(DP_FW_MAX_DEPTH) where !level.isEmpty {
            var next: [Int: (Int, dp_fw_node)] = [:]
            func visit(_ child: Int, _ region: dp_fw_node, in tree: Int) {
                if leadsToDead[child], dead.contains(where: { $0.overlaps(region) }) { next[child] = (tree, union(next[child]?.1, region)) }
            }
            for (i, (t, region)) in level {
                let n = nodes[i]
                if n.kind == UInt8(DP_FW_NODE_LEAF.rawValue) {
                    for r in Int(n.base)..<Int(n.base) + Int(n.count) where nodes[r].bound(family, high: true) == 0 {
                        for d in deadAt[nodes[r].priority] ?? [] where dead[d].overlaps(region) {
                            var part = dead[d]
                            for f in 0..<fields {
                                part.setBound(f, high: false, max(part.bound(f, high: false), region.bound(f, high: false)))
                                part.setBound(f, high: true, min(part.bound(f, high: true), region.bound(f, high: true)))
                            }
                            out.append((i, t, part, Int(nodes[r].priority)))
                        }
                    }
                }
                guard n.kind == UInt8(DP_FW_NODE_CUT.rawValue) else { continue }
                // The cut's children split an aligned block of 2^(shift + bits) keys of the
                // field: the guard's, or (no guard) the one the region lies in.
                let f = Int(n.field), shift = UInt64(n.shift), width = shift + UInt64(n.bits)
                let lo = UInt64(region.bound(f, high: false)), hi = UInt64(region.bound(f, high: true))
                let block = n.guard_mask != 0 ? UInt64(n.guard_value) : (lo >> width) << width, end = block + (1 << width) - 1
                if n.guard_mask != 0 && (lo < block || hi > end) { visit(Int(n.base) + (1 << Int(n.bits)), region, in: t) }
                if n.guard_mask == 0 && hi > end { // not within one block: every child, with the whole region
                    for c in 0..<(1 << Int(n.bits)) { visit(Int(n.base) + c, region, in: t) }
                    continue
                }
                guard max(lo, block) <= min(hi, end) else { continue }
                let first = (max(lo, block) - block) >> shift, last = (min(hi, end) - block) >> shift
                for c in first...last {
                    var child = region
                    child.setBound(f, high: false, UInt32(max(lo, block + (c << shift))))
                    child.setBound(f, high: true, UInt32(min(hi, block + ((c + 1) << shift) - 1)))
                    visit(Int(n.base) + Int(c), child, in: t)
                }
            }
            level = next
        }
        return out
    }
}
