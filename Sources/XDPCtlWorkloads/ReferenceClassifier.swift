import XDPCtlCore

/// The plain definition of the firewall: the first rule, in order, whose every present
/// field matches; then the default. Returns the rule's index (nil for the default).
/// Written with plain loops and its own prefix test (leading bits equal), independent of
/// the ranges the compiler derives, and cheap enough for 100,000-rule sets in debug builds.
public func referenceClassify(_ firewall: Firewall, _ key: PacketKey) -> (rule: Int?, action: RuleAction) {
    func inPrefix(_ p: IPPrefix, _ a: IPAddress) -> Bool {
        guard p.family == a.family else { return false }
        var left = p.length
        for w in 0..<4 where left > 0 {
            let bits = min(left, 32)
            if (a.words[w] ^ p.address.words[w]) >> (32 - bits) != 0 { return false }
            left -= bits
        }
        return true
    }
    func anyPrefix(_ list: [IPPrefix], _ a: IPAddress) -> Bool {
        if list.isEmpty { return true }
        for p in list where inPrefix(p, a) { return true }
        return false
    }
    func anyPort(_ list: [PortRange], _ port: UInt16?) -> Bool {
        if list.isEmpty { return true }
        guard let port else { return false }
        for r in list where r.low <= port && port <= r.high { return true }
        return false
    }
    return firewall.rules.withUnsafeBufferPointer { rules in
        for i in rules.indices {
            if let p = rules[i].proto, p.number != key.proto { continue }
            if anyPort(rules[i].dstPorts, key.dstPort) && anyPort(rules[i].srcPorts, key.srcPort)
                && anyPrefix(rules[i].dst, key.dst) && anyPrefix(rules[i].src, key.src) {
                return (i, rules[i].action)
            }
        }
        return (nil, firewall.defaultAction)
    }
}

/// Slot i+1 for rule i, as the data plane assigns them on a first apply.
public func sequentialSlots(_ fw: Firewall) -> [String: UInt32] {
    Dictionary(uniqueKeysWithValues: fw.rules.enumerated().map { ($1.name, UInt32($0 + 1)) })
}

/// A small deterministic generator (SplitMix64), so a failing case can be replayed.
public struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in 0..<n (0 when n < 1).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
}

/// Random rule sets with deliberate overlap: prefixes are carved from a few shared bases,
/// ports from a few shared edges, so rules shadow and intersect one another.
public struct RuleSetGenerator {
    public var rng: SeededRandom
    public init(rng: SeededRandom) { self.rng = rng }
    let v4Bases: [UInt32] = [0x0A00_0000, 0xC633_6400, 0xC0A8_0000, 0xCB00_7100]
    let v6Bases: [[UInt32]] = [[0x2001_0DB8, 0, 0, 0], [0x2001_0DB8, 0x0BAD_0000, 0, 0], [0xFD00_0000, 0, 0, 0]]
    let portEdges: [UInt16] = [0, 1, 22, 53, 80, 443, 1000, 2000, 8080, 65535]

    mutating func address(_ family: AddressFamily) -> IPAddress {
        if family == .ipv4 {
            let base = v4Bases.randomElement(using: &rng)!
            return IPAddress(family: .ipv4, words: [base | UInt32.random(in: 0...0xFFFF, using: &rng) & (Bool.random(using: &rng) ? 0xFF : 0xFFFF), 0, 0, 0])
        }
        var w = v6Bases.randomElement(using: &rng)!
        w[1] |= UInt32.random(in: 0...0xFFFF, using: &rng) & (Bool.random(using: &rng) ? 0xF : 0xFFFF)
        w[3] = UInt32.random(in: 0...3, using: &rng)
        return IPAddress(family: .ipv6, words: w)
    }

    mutating func prefix(_ family: AddressFamily) -> IPPrefix {
        let a = address(family)
        let len = family == .ipv4 ? [8, 16, 20, 24, 28, 32].randomElement(using: &rng)! : [16, 32, 40, 48, 64, 127, 128].randomElement(using: &rng)!
        let words = (0..<4).map { a.words[$0] & IPPrefix.mask(word: $0, length: len, family: family) }
        return IPPrefix(address: IPAddress(family: family, words: words), length: len)
    }

    mutating func port() -> UInt16 {
        Bool.random(using: &rng) ? portEdges.randomElement(using: &rng)! : UInt16.random(in: 0...65535, using: &rng)
    }

    mutating func portRanges() -> [PortRange] {
        guard Int.random(in: 0..<3, using: &rng) == 0 else { return [] }
        return (0..<Int.random(in: 1...3, using: &rng)).map { _ in
            let a = port(), b = Bool.random(using: &rng) ? a : port()
            return PortRange(min(a, b), max(a, b))
        }
    }

    public mutating func rule(_ i: Int) -> FirewallRule {
        let families: [AddressFamily] = [[.ipv4], [.ipv6], [.ipv4, .ipv6]].randomElement(using: &rng)!
        func prefixes(_ g: inout RuleSetGenerator) -> [IPPrefix] {
            guard Int.random(in: 0..<3, using: &g.rng) > 0 else { return [] }
            return (0..<Int.random(in: 1...3, using: &g.rng)).map { _ in g.prefix(families.randomElement(using: &g.rng)!) }
        }
        var src = prefixes(&self), dst = prefixes(&self)
        if !src.isEmpty && !dst.isEmpty && Set(src.map(\.family)).isDisjoint(with: Set(dst.map(\.family))) { dst = [] }
        var proto: IPProtocol? = [nil, .tcp, .udp, .icmp, .icmpv6, IPProtocol(47)].randomElement(using: &rng)!
        var sports = portRanges(), dports = portRanges()
        if !(proto?.hasPorts ?? false) { sports = []; dports = [] }
        if proto == nil, Bool.random(using: &rng) { proto = .tcp; dports = [PortRange(22, 22)] }
        if src.isEmpty, dst.isEmpty, proto == nil { src = [prefix(families[0])] }
        return FirewallRule(name: "r\(i)", action: Bool.random(using: &rng) ? .allow : .drop, src: src, dst: dst,
                            proto: proto, srcPorts: sports, dstPorts: dports)
    }

    public mutating func firewall(rules: Int) -> Firewall {
        Firewall(defaultAction: Bool.random(using: &rng) ? .allow : .drop, rules: (0..<rules).map { rule($0) })
    }

    /// Packets aimed at the rules' edges as well as anywhere.
    public mutating func packet(_ fw: Firewall) -> PacketKey {
        let family: AddressFamily = Bool.random(using: &rng) ? .ipv4 : .ipv6
        func addr(_ g: inout RuleSetGenerator, _ list: [IPPrefix]) -> IPAddress {
            let candidates = list.filter { $0.family == family }
            if let p = candidates.randomElement(using: &g.rng), Int.random(in: 0..<4, using: &g.rng) > 0 {
                let words = (0..<4).map { w in
                    Bool.random(using: &g.rng) ? p.range(word: w).lowerBound : (Bool.random(using: &g.rng) ? p.range(word: w).upperBound : UInt32.random(in: p.range(word: w), using: &g.rng))
                }
                return IPAddress(family: family, words: words)
            }
            return g.address(family)
        }
        let rule = fw.rules.randomElement(using: &rng)
        let proto: UInt8 = Int.random(in: 0..<4, using: &rng) == 0 ? [1, 58, 47, 6, 17].randomElement(using: &rng)! : (rule?.proto?.number ?? 6)
        var sport: UInt16?, dport: UInt16?
        if proto == 6 || proto == 17, Int.random(in: 0..<10, using: &rng) > 0 {
            func pick(_ g: inout RuleSetGenerator, _ ranges: [PortRange]) -> UInt16 {
                if let r = ranges.randomElement(using: &g.rng), Bool.random(using: &g.rng) {
                    return [r.low, r.high, r.low &- 1, r.high &+ 1].randomElement(using: &g.rng)!
                }
                return g.port()
            }
            sport = pick(&self, rule?.srcPorts ?? [])
            dport = pick(&self, rule?.dstPorts ?? [])
        }
        return PacketKey(src: addr(&self, rule?.src ?? []), dst: addr(&self, rule?.dst ?? []), proto: proto, srcPort: sport, dstPort: dport)
    }
}
