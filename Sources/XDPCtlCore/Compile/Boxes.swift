import CXDPCtlABI

/// Rules expanded into boxes: one inclusive range per key word, in priority order,
/// stored flat for the compiler's inner loops.
struct Boxes {
    private var bounds: [UInt32] = []
    private var slots: [UInt32] = []
    private var actions: [UInt8] = []
    /// The priority each box's RULE node gets (nil: its position).
    private var priorities: [UInt32]?
    private static let fields = FirewallCompiler.fields

    var count: Int { slots.count }

    init() {}

    @inline(__always) func lo(_ r: Int32, _ f: Int) -> UInt32 { bounds[Int(r) * 2 * Self.fields + f] }
    @inline(__always) func hi(_ r: Int32, _ f: Int) -> UInt32 { bounds[Int(r) * 2 * Self.fields + Self.fields + f] }

    /// The boxes of RULE nodes, each keeping its node's priority.
    init(rules nodes: some Sequence<dp_fw_node>) {
        priorities = []
        for n in nodes {
            withUnsafeBytes(of: n.lo) { bounds.append(contentsOf: $0.bindMemory(to: UInt32.self)) }
            withUnsafeBytes(of: n.hi) { bounds.append(contentsOf: $0.bindMemory(to: UInt32.self)) }
            slots.append(n.slot)
            actions.append(n.action)
            priorities!.append(n.priority)
        }
    }

    @inline(__always) func action(_ r: Int32) -> UInt8 { actions[Int(r)] }

    mutating func append(lo: [UInt32], hi: [UInt32], slot: UInt32, action: RuleAction) {
        bounds.append(contentsOf: lo)
        bounds.append(contentsOf: hi)
        slots.append(slot)
        actions.append(UInt8(action == .allow ? DP_FW_ALLOW.rawValue : DP_FW_DROP.rawValue))
    }

    /// Whether box r and the box of RULE node n have the same bounds and slot (and, with
    /// `action`, the same action).
    func same(_ r: Int32, as n: dp_fw_node, action: Bool) -> Bool {
        slots[Int(r)] == n.slot && (!action || actions[Int(r)] == n.action)
            && (0..<Self.fields).allSatisfy { lo(r, $0) == n.bound($0, high: false) && hi(r, $0) == n.bound($0, high: true) }
    }


    mutating func append(_ rule: FirewallRule, slot: UInt32) {
        for box in Self.expand(src: rule.src, dst: rule.dst, proto: rule.proto, srcPorts: rule.srcPorts, dstPorts: rule.dstPorts) {
            append(lo: box.lo, hi: box.hi, slot: slot, action: rule.action)
        }
    }

    /// The match fields as boxes over the packet key (inclusive bounds per key word): one
    /// per src × dst × source port × destination port combination, per family.
    static func expand(src: [IPPrefix], dst: [IPPrefix], proto: IPProtocol?, srcPorts: [PortRange],
                       dstPorts: [PortRange]) -> [(lo: [UInt32], hi: [UInt32])] {
        var families: [AddressFamily] = [.ipv4, .ipv6]
        if !src.isEmpty { families = families.filter { f in src.contains { $0.family == f } } }
        if !dst.isEmpty { families = families.filter { f in dst.contains { $0.family == f } } }
        let anyFamily = src.isEmpty && dst.isEmpty
        var boxes: [(lo: [UInt32], hi: [UInt32])] = []
        for family in anyFamily ? [nil] : families.map(Optional.some) {
            let srcs: [IPPrefix?] = src.isEmpty ? [nil] : src.filter { $0.family == family }
            let dsts: [IPPrefix?] = dst.isEmpty ? [nil] : dst.filter { $0.family == family }
            let sports = srcPorts.isEmpty ? [nil] : srcPorts.map(Optional.some)
            let dports = dstPorts.isEmpty ? [nil] : dstPorts.map(Optional.some)
            for s in srcs { for d in dsts { for sp in sports { for dp in dports {
                var lo = [UInt32](repeating: 0, count: fields)
                var hi = [UInt32](repeating: .max, count: fields)
                for w in 0..<4 {
                    if let s { (lo[w], hi[w]) = (s.range(word: w).lowerBound, s.range(word: w).upperBound) }
                    if let d { (lo[4 + w], hi[4 + w]) = (d.range(word: w).lowerBound, d.range(word: w).upperBound) }
                }
                if let sp { (lo[8], hi[8]) = (UInt32(sp.low), UInt32(sp.high)) }
                if let dp { (lo[9], hi[9]) = (UInt32(dp.low), UInt32(dp.high)) }
                if let p = proto { (lo[10], hi[10]) = (UInt32(p.number), UInt32(p.number)) }
                if let family { (lo[11], hi[11]) = (UInt32(family.rawValue), UInt32(family.rawValue)) }
                boxes.append((lo, hi))
            } } } }
        }
        return boxes
    }

    /// Whether an address field is wide: shorter than /16 (IPv4) or /48 (IPv6), or absent.
    func wide(_ r: Int32, field f: Int) -> Bool {
        let family = lo(r, Int(DP_FW_F_FAMILY.rawValue)) == hi(r, Int(DP_FW_F_FAMILY.rawValue)) ? lo(r, Int(DP_FW_F_FAMILY.rawValue)) : 0
        if family == 4 || family == 0 { return hi(r, f) - lo(r, f) >= 1 << 16 }
        return hi(r, f) - lo(r, f) >= 1 << 16 || (hi(r, f) == lo(r, f) && hi(r, f + 1) &- lo(r, f + 1) == .max)
    }

    /// The default action: a rule that matches everything, last, counted in slot 0.
    mutating func appendDefault(action: RuleAction) {
        append(lo: Array(repeating: 0, count: Self.fields), hi: Array(repeating: .max, count: Self.fields), slot: 0, action: action)
    }

    func node(_ r: Int32) -> dp_fw_node {
        var n = dp_fw_node()
        n.kind = UInt8(DP_FW_NODE_RULE.rawValue)
        n.slot = slots[Int(r)]
        n.action = actions[Int(r)]
        n.priority = priorities?[Int(r)] ?? UInt32(r)
        withUnsafeMutableBytes(of: &n.lo) { raw in
            for f in 0..<Self.fields { raw.storeBytes(of: lo(r, f), toByteOffset: f * 4, as: UInt32.self) }
        }
        withUnsafeMutableBytes(of: &n.hi) { raw in
            for f in 0..<Self.fields { raw.storeBytes(of: hi(r, f), toByteOffset: f * 4, as: UInt32.self) }
        }
        return n
    }
}
