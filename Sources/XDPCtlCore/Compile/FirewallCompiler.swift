import CXDPCtlABI

/// Compiles ordered first-match rules into at most DP_FW_MAX_TREES decision trees
/// (HiCuts, Gupta & McKeown 1999; separation by field width as in EffiCuts): a cut node
/// splits one key word of a guarded block into 2^bits equal parts, and a leaf holds the
/// few rules that can still match there, in priority order, cut short at the first rule
/// that covers the whole leaf. Per tree a packet costs at most DP_FW_MAX_DEPTH lookups plus
/// DP_FW_LEAF_MAX rule checks, whatever the number of rules; the header (node 0) carries
/// the default action.
public struct FirewallCompiler {
    /// Rules below which a node becomes a leaf rather than being cut further.
    public var leafTarget = 8
    /// Space factor: a cut may replicate rules up to spaceFactor × rules + children.
    public var spaceFactor = 4
    /// Widest cut considered at a node of few rules; a node of n rules may cut up to
    /// log2(n) bits wide (at most DP_FW_MAX_CUT_BITS). See widestCut.
    public var maxCutBits = 8
    /// Nodes a table may hold.
    public var maxNodes = Int(DP_FW_MAX_NODES)
    /// Extra leaves a rule may be copied into before it moves to the next tree. Generous:
    /// a copy costs a node, a tree more costs every packet a walk (3 trees instead of 4
    /// for 100,000 ClassBench-shaped acl rules, with fewer nodes).
    public var maxCopies = 4096
    /// Rules below which a group of rules is not given a tree of its own.
    public var minTreeRules = 64
    /// A cut widens only while at least 1/minOccupancy of its children hold rules
    /// (Int.max: no limit; wide, shallow trees). A set whose wide trees outgrow maxNodes
    /// is compiled again with 4.
    public var minOccupancy = Int.max
    /// Rules a node keeps before it stops looking for rules shadowed by earlier ones.
    public var shadowCheckLimit = 256
    /// Boxes the patch trees may hold before a change needs a full compile.
    public var maxPatchBoxes = 4096

    static let fields = Int(DP_FW_NFIELDS.rawValue)
    /// Bits of each key word's domain: addresses 32, ports 17 (DP_FW_NO_PORT = 2^16), proto 8, family 3.
    static let domainBits: [Int] = Array(repeating: 32, count: 8) + [17, 17, 8, 3]

    public init() {}

    /// The rule counter slot of each rule: slot 0 counts the default action.
    public func compile(_ firewall: Firewall, slots: [String: UInt32]) throws(CapacityError) -> FirewallTable {
        var boxes = Boxes()
        for rule in firewall.rules {
            guard let slot = slots[rule.name] else { preconditionFailure("no counter slot for rule \(rule.name)") }
            boxes.append(rule, slot: slot)
        }
        boxes.appendDefault(action: firewall.defaultAction)
        guard minOccupancy > 4 else { return try build(boxes) }
        // Wide trees take up to ~6 nodes per rule for ClassBench-shaped sets; a set they
        // would take more than 16 for is given up on early, as too big for wide trees.
        var wide = self
        wide.maxNodes = min(maxNodes, 16 * boxes.count + (1 << 16))
        do {
            return try wide.build(boxes)
        } catch {
            // Too big for wide trees: trade a little depth for memory, with cuts that leave
            // few children empty.
            var compact = self
            compact.minOccupancy = 4
            return try compact.build(boxes)
        }
    }

    // MARK: tree construction

    struct Region {
        var base: [UInt32] = Array(repeating: 0, count: FirewallCompiler.fields)
        var bits: [Int] = FirewallCompiler.domainBits

        func high(_ f: Int) -> UInt32 { bits[f] >= 32 ? UInt32.max : base[f] | ((UInt32(1) << bits[f]) - 1) }
    }

    struct Work {
        var slot: Int
        var rules: [Int32]
        var region: Region
        var depth: Int
    }

    func build(_ boxes: Boxes) throws(CapacityError) -> FirewallTable {
        let roots = Int(DP_FW_PATCH_TREE)
        // Node 0: the header (default action, tree roots); nodes 1...roots: the roots.
        var header = boxes.node(Int32(boxes.count - 1))
        header.kind = UInt8(DP_FW_NODE_HEADER.rawValue)
        header.priority = .max
        var table = FirewallTable(nodes: [header] + Array(repeating: dp_fw_node(), count: Int(DP_FW_MAX_TREES)), boxCount: boxes.count, depth: 0, largestLeaf: 0)
        table.setTree(0..<Int(DP_FW_MAX_TREES), best: .max)
        var leaves: [[Int32]: UInt32] = [:]
        // EffiCuts' separation: one group per (source wide?, destination wide?), so a tree
        // cuts only address fields its rules are narrow in. Spilled rules join the next group.
        let src = Int(DP_FW_F_SRC0.rawValue), dst = Int(DP_FW_F_DST0.rawValue)
        var groups = Array(repeating: [Int32](), count: 4)
        for r in 0..<Int32(boxes.count - 1) {
            groups[(boxes.wide(r, field: src) ? 2 : 0) + (boxes.wide(r, field: dst) ? 1 : 0)].append(r)
        }
        // A tree costs every packet a walk, so rules narrow in both addresses get none of
        // their own: they join the group cut on the address that tells more of them apart
        // (100,000 ClassBench-shaped rules: 3 trees instead of 4–5, a third less work per
        // packet, fewer nodes).
        let distinct = { (f: Int) in Set(groups[0].map { [boxes.lo($0, f), boxes.hi($0, f)] }).count }
        groups[distinct(src) > distinct(dst) ? 1 : 2] += groups[0]
        groups[0] = []
        // A small rule set gets one tree, and a group too small to be worth a tree joins
        // the both-wide group (merging narrow rules into a wide tree is harmless; the
        // reverse would copy wide rules into many leaves).
        if boxes.count - 1 < 2 * minTreeRules {
            groups = [groups.flatMap { $0 }, [], [], []]
        } else {
            for g in 0..<3 where groups[g].count < minTreeRules {
                groups[3] += groups[g]
                groups[g] = []
            }
        }
        var carried: [Int32] = []
        var tree = 0
        var entry = [UInt8](repeating: 0, count: boxes.count), home = entry
        for (g, group) in groups.enumerated() {
            var rules = (group + carried).sorted()
            carried = []
            while !rules.isEmpty {
                let lastTree = tree == roots - 1
                for r in rules {
                    if entry[Int(r)] == 0 { entry[Int(r)] = UInt8(1 + tree) }
                    home[Int(r)] = UInt8(1 + tree)
                }
                let spill = try buildTree(1 + tree, rules, boxes, last: lastTree, into: &table, leaves: &leaves)
                table.setTree(tree..<tree + 1, best: UInt32(rules[0]))
                tree += 1
                table.nodes[0].count = UInt32(tree)
                // Spills go to the next group's tree, or to a tree of their own after the last group.
                if g < groups.count - 1 && roots - tree > groups.count - 1 - g { carried = spill; break }
                rules = spill
            }
        }
        table.appendBoxes(boxes, trees: { (entry[$0], home[$0]) }, dead: [])
        return table
    }

    /// Builds one tree whose root is node `root`; returns the rules it spilled for the next tree.
    func buildTree(_ root: Int, _ rules: [Int32], _ boxes: Boxes, last: Bool,
                   into table: inout FirewallTable, leaves: inout [[Int32]: UInt32]) throws(CapacityError) -> [Int32] {
        var spilled = [Bool](repeating: false, count: boxes.count)
        var copies = [Int](repeating: 0, count: boxes.count)
        var spill: [Int32] = []
        func spillRule(_ r: Int32) {
            if !spilled[Int(r)] { spilled[Int(r)] = true; spill.append(r) }
        }
        var queue = [Work(slot: root, rules: rules, region: Region(), depth: 0)]
        var aliases: [(slot: Int, of: Int)] = []
        var head = 0
        while head < queue.count {
            let work = queue[head]
            head += 1
            var rules = prune(work.rules.filter { !spilled[Int($0)] }, boxes, work.region)
            if rules.count > leafTarget, work.depth < Int(DP_FW_MAX_DEPTH), let cut = chooseCut(rules, boxes, work.region) {
                let base = table.nodes.count
                let slots = cut.children.count + (cut.outside == nil ? 0 : 1)
                guard base + slots <= maxNodes else { throw tooManyNodes }
                table.nodes.append(contentsOf: repeatElement(dp_fw_node(), count: slots))
                var node = dp_fw_node()
                node.kind = UInt8(DP_FW_NODE_CUT.rawValue)
                node.field = UInt8(cut.field)
                node.shift = UInt8(cut.shift)
                node.bits = UInt8(cut.bits)
                node.base = UInt32(base)
                node.guard_mask = cut.guardMask
                node.guard_value = cut.block.base[cut.field] & cut.guardMask
                table.nodes[work.slot] = node
                table.depth = max(table.depth, work.depth + 1)
                if let outside = cut.outside {
                    queue.append(Work(slot: base + cut.children.count, rules: outside, region: work.region, depth: work.depth + 1))
                }
                // Children whose rules all span them whole in the cut field decide alike:
                // build the first of each such group once and copy its node to the others.
                var builtFor: [[Int32]: Int] = [:]
                for (i, childRules) in cut.children.enumerated() {
                    var region = cut.block
                    region.base[cut.field] += UInt32(i) << cut.shift
                    region.bits[cut.field] = cut.shift
                    let whole = childRules.allSatisfy { boxes.lo($0, cut.field) <= region.base[cut.field] && boxes.hi($0, cut.field) >= region.high(cut.field) }
                    if whole, let first = builtFor[childRules] {
                        aliases.append((base + i, first))
                        continue
                    }
                    if whole { builtFor[childRules] = base + i }
                    queue.append(Work(slot: base + i, rules: childRules, region: region, depth: work.depth + 1))
                }
                // A rule copied into too many children goes to the next tree instead.
                if !last {
                    for r in rules {
                        let (first, lastChild) = span(r, boxes, cut.block, field: cut.field, shift: cut.shift)
                        copies[Int(r)] += lastChild - first
                        if copies[Int(r)] > maxCopies { spillRule(r) }
                    }
                }
                continue
            }
            if rules.count > Int(DP_FW_LEAF_MAX) {
                guard !last else {
                    throw CapacityError(message: "\(rules.count) overlapping rules cannot be separated into leaves of \(DP_FW_LEAF_MAX); merge overlapping rules")
                }
                rules[Int(DP_FW_LEAF_MAX)...].forEach(spillRule)
                rules.removeLast(rules.count - Int(DP_FW_LEAF_MAX))
            }
            var leaf = dp_fw_node()
            leaf.kind = UInt8(rules.isEmpty ? DP_FW_NODE_EMPTY.rawValue : DP_FW_NODE_LEAF.rawValue)
            leaf.count = UInt32(rules.count)
            leaf.priority = rules.first.map { boxes.node($0).priority } ?? 0
            if rules.count > 1, let g = leafGuard(rules, boxes, work.region) {
                leaf.field = UInt8(g.field)
                leaf.guard_value = g.lo
                leaf.guard_mask = ~(g.hi - g.lo)
            }
            if let shared = leaves[rules] {
                leaf.base = shared
            } else if !rules.isEmpty {
                leaf.base = UInt32(table.nodes.count)
                leaves[rules] = leaf.base
                table.nodes.append(contentsOf: rules.map { boxes.node($0) })
            }
            table.nodes[work.slot] = leaf
            table.largestLeaf = max(table.largestLeaf, rules.count)
            if table.nodes.count > maxNodes { throw tooManyNodes }
        }
        for a in aliases { table.nodes[a.slot] = table.nodes[a.of] }
        return spill.sorted() // priority order, as every rule list is
    }

    /// A leaf's guard: the key word in which its rules leave the most of `region` out,
    /// and the range of that word their boxes lie in (not clipped to the region, so the
    /// guard holds wherever the leaf node is copied). A packet outside it skips the leaf:
    /// a miss on a leaf of rules that differ only in protocol and ports, say, costs one
    /// compare instead of a check per rule. nil when every word of the region holds a rule.
    func leafGuard(_ rules: [Int32], _ boxes: Boxes, _ region: Region) -> (field: Int, lo: UInt32, hi: UInt32)? {
        var best: (field: Int, lo: UInt32, hi: UInt32, share: Double)?
        for f in 0..<Self.fields {
            var lo = UInt32.max, hi = UInt32.min, inLo = UInt32.max, inHi = UInt32.min
            for r in rules {
                lo = min(lo, boxes.lo(r, f))
                hi = max(hi, boxes.hi(r, f))
                inLo = min(inLo, max(boxes.lo(r, f), region.base[f]))
                inHi = max(inHi, min(boxes.hi(r, f), region.high(f)))
            }
            let share = (Double(inHi) - Double(inLo) + 1) / (Double(region.high(f)) - Double(region.base[f]) + 1)
            if share < 1, share < best?.share ?? 1 { best = (f, lo, hi, share) }
        }
        return best.map { ($0.field, $0.lo, $0.hi) }
    }

    var tooManyNodes: CapacityError {
        CapacityError(message: "the firewall compiles to more than \(maxNodes) tree nodes; merge rules or use fewer overlapping ranges")
    }

    /// Drops what can never decide inside `region`: rules that miss it, rules whose part
    /// of it lies inside an earlier rule (shadowed there), and so every rule after the
    /// first one that covers all of it.
    func prune(_ rules: [Int32], _ boxes: Boxes, _ region: Region) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(rules.count)
        var clipped: [UInt32] = []  // the kept rules' bounds inside the region: lo, hi per field
        clipped.reserveCapacity(rules.count * 2 * Self.fields)
        var lo = [UInt32](repeating: 0, count: Self.fields), hi = lo
        next: for r in rules {
            var covers = true
            for f in 0..<Self.fields {
                let rlo = region.base[f], rhi = region.high(f)
                lo[f] = max(boxes.lo(r, f), rlo)
                hi[f] = min(boxes.hi(r, f), rhi)
                if lo[f] > hi[f] { continue next }
                if lo[f] > rlo || hi[f] < rhi { covers = false }
            }
            // Shadowed: an earlier rule holds all of this rule's part of the region.
            if out.count <= shadowCheckLimit {
                shadow: for k in 0..<out.count {
                    let e = k * 2 * Self.fields
                    for f in 0..<Self.fields where clipped[e + f] > lo[f] || clipped[e + Self.fields + f] < hi[f] { continue shadow }
                    continue next
                }
                clipped += lo
                clipped += hi
            }
            out.append(r)
            if covers { break }
        }
        return out
    }

    struct Cut {
        var field: Int
        var bits: Int
        var shift: Int
        /// The aligned block of the region the cut splits; keys outside it go to `outside`.
        var block: Region
        var guardMask: UInt32
        var children: [[Int32]]
        var outside: [Int32]?
    }

    /// The smallest aligned block of `region` in field `f` holding every rule that is not
    /// whole in `f`; nil when all of them are.
    func block(_ rules: [Int32], _ boxes: Boxes, _ region: Region, field f: Int) -> Region? {
        var lo = UInt32.max, hi = UInt32.min
        for r in rules {
            let rlo = max(boxes.lo(r, f), region.base[f]), rhi = min(boxes.hi(r, f), region.high(f))
            if rlo == region.base[f] && rhi == region.high(f) { continue }
            lo = min(lo, rlo)
            hi = max(hi, rhi)
        }
        guard lo <= hi else { return nil }
        let bits = lo == hi ? 0 : 32 - (lo ^ hi).leadingZeroBitCount
        var block = region
        block.bits[f] = min(bits, region.bits[f])
        block.base[f] = bits >= 32 ? 0 : lo & ~((UInt32(1) << bits) - 1)
        return block
    }

    /// Widest cut considered at a node of n rules: a root of 100,000 rules may cut 16 bits
    /// of an address at once, and leaves a level less on most paths (100k ClassBench-shaped
    /// sets: ~2 levels per hit instead of ~3, in as many nodes or fewer).
    func widestCut(_ n: Int) -> Int {
        min(Int(DP_FW_MAX_CUT_BITS), max(maxCutBits, Int.bitWidth - 1 - n.leadingZeroBitCount))
    }

    /// The cut that best separates the rules: per field, the block where its rules differ,
    /// cut as wide as the space factor allows; across fields, the one whose fullest child
    /// holds the fewest rules.
    func chooseCut(_ rules: [Int32], _ boxes: Boxes, _ region: Region) -> Cut? {
        var best: (field: Int, bits: Int, block: Region, maxChild: Int, total: Int)?
        for f in 0..<Self.fields where region.bits[f] > 0 {
            guard let block = block(rules, boxes, region, field: f) else { continue }
            let narrowed = block.bits[f] < region.bits[f]
            var chosen: (bits: Int, maxChild: Int, total: Int)?
            for bits in (narrowed ? 0 : 1)...min(widestCut(rules.count), block.bits[f]) {
                let (maxChild, total, occupied) = childCounts(rules, boxes, block, field: f, bits: bits)
                // Wider only while rules are not copied too often and most children hold rules.
                if chosen != nil && (total > spaceFactor * rules.count + (1 << bits) || occupied < (1 << bits) / minOccupancy) { break }
                chosen = (bits, maxChild, total)
            }
            guard let c = chosen else { continue }
            if best == nil || c.maxChild < best!.maxChild || (c.maxChild == best!.maxChild && c.total < best!.total) {
                best = (f, c.bits, block, c.maxChild, c.total)
            }
        }
        guard let best else { return nil }
        let f = best.field
        let shift = best.block.bits[f] - best.bits
        let narrowed = best.block.bits[f] < region.bits[f]
        // A cut that neither narrows nor keeps any rule out of any child separates nothing.
        if !narrowed && best.maxChild == rules.count && best.total == rules.count << best.bits { return nil }
        var children = Array(repeating: [Int32](), count: 1 << best.bits)
        var outside: [Int32] = []
        for r in rules {
            let lo = boxes.lo(r, f), hi = boxes.hi(r, f)
            if narrowed && (lo < best.block.base[f] || hi > best.block.high(f)) { outside.append(r) }
            guard hi >= best.block.base[f], lo <= best.block.high(f) else { continue }
            let (first, last) = span(r, boxes, best.block, field: f, shift: shift)
            for c in first...last { children[c].append(r) }
        }
        // A narrowed block is smaller than 2^32, so its bits are below 32.
        let guardMask = narrowed ? ~((UInt32(1) << best.block.bits[f]) - 1) : 0
        return Cut(field: f, bits: best.bits, shift: shift, block: best.block, guardMask: guardMask,
                   children: children, outside: narrowed ? outside : nil)
    }

    /// The children a rule falls into when `field` of `block` is cut at `shift`.
    @inline(__always)
    func span(_ r: Int32, _ boxes: Boxes, _ block: Region, field f: Int, shift: Int) -> (Int, Int) {
        let base = block.base[f]
        let lo = max(boxes.lo(r, f), base), hi = min(boxes.hi(r, f), block.high(f))
        return (Int((lo - base) >> shift), Int((hi - base) >> shift))
    }

    func childCounts(_ rules: [Int32], _ boxes: Boxes, _ region: Region, field f: Int, bits: Int) -> (maxChild: Int, total: Int, occupied: Int) {
        let shift = region.bits[f] - bits
        var diff = [Int](repeating: 0, count: (1 << bits) + 1)
        var total = 0
        for r in rules where boxes.hi(r, f) >= region.base[f] && boxes.lo(r, f) <= region.high(f) {
            let (first, last) = span(r, boxes, region, field: f, shift: shift)
            diff[first] += 1
            diff[last + 1] -= 1
            total += last - first + 1
        }
        var running = 0, maxChild = 0, occupied = 0
        for c in 0..<(1 << bits) {
            running += diff[c]
            maxChild = max(maxChild, running)
            if running > 0 { occupied += 1 }
        }
        return (maxChild, total, occupied)
    }
}
