import CXDPCtlABI

/// The data path's firewall walk, in Swift: `explain` asks it which rule decides a
/// packet, the tests check compiled tables against the first-match reference through it,
/// and the benchmark's cost model counts its work.
extension FirewallTable {
    /// Walks the table exactly as fw_classify in bpf/lib/firewall.h does; returns the
    /// index of the deciding RULE node, or 0 (the header, carrying the default action).
    public func classify(_ key: [UInt32]) -> Int {
        var work = Work()
        return classify(key, counting: &work)
    }

    /// What a packet costs the data path: trees walked, cut nodes passed, rules checked,
    /// and levels: cut nodes one after another (a pair of trees walked together costs
    /// the deeper walk's).
    public struct Work: Sendable {
        public var trees = 0, cuts = 0, checks = 0, levels = 0
        public init() {}
    }

    /// classify, adding up the work the walk does.
    public func classify(_ key: [UInt32], counting work: inout Work) -> Int {
        let header = nodes[0], trees = min(Int(DP_FW_MAX_TREES), Int(header.count))
        var best = 0
        // Trees in pairs: both are walked (or skipped) before either's leaf is tried, the
        // leaf with the lower priority first.
        for pair in stride(from: 0, to: trees, by: 2) {
            let walked = (pair..<min(pair + 2, trees)).filter { header.bound($0, high: false) < nodes[best].priority }
            var deepest = 0
            defer { work.levels += deepest }
            var leaves: [Int] = []
            for tree in walked {
                var index = Int(header.bound(tree, high: true))
                work.trees += 1
                for depth in 0...Int(DP_FW_MAX_DEPTH) where nodes[index].kind == UInt8(DP_FW_NODE_CUT.rawValue) {
                    let n = nodes[index], word = key[Int(n.field)], bits = UInt32(n.bits)
                    index = Int(n.base) + Int(word & n.guard_mask != n.guard_value ? 1 << bits : (word >> UInt32(n.shift)) & ((1 << bits) - 1))
                    work.cuts += 1
                    deepest = max(deepest, depth + 1)
                }
                leaves.append(index)
            }
            if leaves.count == 2, nodes[leaves[1]].priority < nodes[leaves[0]].priority { leaves.swapAt(0, 1) }
            for index in leaves {
                let leaf = nodes[index]
                guard leaf.kind == UInt8(DP_FW_NODE_LEAF.rawValue), leaf.priority < nodes[best].priority,
                      key[Int(leaf.field)] &- leaf.guard_value <= ~leaf.guard_mask else { continue }
                for r in Int(leaf.base)..<Int(leaf.base) + min(Int(leaf.count), Int(DP_FW_LEAF_MAX)) {
                    if nodes[r].priority >= nodes[best].priority { break }
                    work.checks += 1
                    if nodes[r].matches(key) { best = r; break }
                }
            }
        }
        return best
    }
}
