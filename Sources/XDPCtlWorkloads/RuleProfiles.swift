import XDPCtlCore

/// Rule sets shaped like ClassBench's seed profiles: `acl` (mostly specific destination
/// hosts and exact service ports), `fw` (firewalls: more wildcard sources, port ranges,
/// any-protocol rules) and `ipc` (IP chains: specific on both addresses, ports on both
/// sides). By default 10 % of rules are IPv6. Deterministic for a seed.
public enum RuleProfile: String, CaseIterable, Sendable {
    case acl, fw, ipc

    /// Chances (in tenths) that shape one profile's rules.
    struct Shape {
        var srcNarrow: Int, srcWide: Int   // rest: any source
        var dstNarrow: Int                 // rest: any destination
        var anyProto: Int                  // rest: tcp/udp
        var dportExact: Int, dportRange: Int
        var sportRange: Int, sportExact: Int
    }

    var shape: Shape {
        switch self {
        case .acl: Shape(srcNarrow: 6, srcWide: 2, dstNarrow: 8, anyProto: 2, dportExact: 6, dportRange: 2, sportRange: 1, sportExact: 0)
        case .fw: Shape(srcNarrow: 3, srcWide: 3, dstNarrow: 6, anyProto: 3, dportExact: 4, dportRange: 4, sportRange: 3, sportExact: 0)
        case .ipc: Shape(srcNarrow: 8, srcWide: 1, dstNarrow: 9, anyProto: 1, dportExact: 5, dportRange: 2, sportRange: 2, sportExact: 2)
        }
    }

    public static func acl(count: Int, seed: UInt64) -> Firewall { RuleProfile.acl.rules(count: count, seed: seed) }

    /// `ipv6Percent` of the rules are IPv6, the rest IPv4.
    public func rules(count: Int, seed: UInt64, ipv6Percent: Int = 10) -> Firewall {
        var rng = SeededRandom(seed: seed)
        let shape = self.shape
        let services: [UInt16] = [22, 25, 53, 80, 110, 123, 143, 389, 443, 445, 993, 1433, 3306, 3389, 5432, 6379, 8080, 8443]
        func prefix(_ rng: inout SeededRandom, v6: Bool, lengths: [Int]) -> IPPrefix {
            let len = lengths.randomElement(using: &rng)!
            let family: AddressFamily = v6 ? .ipv6 : .ipv4
            let raw: [UInt32] = v6 ? [0x2001_0DB8, UInt32.random(in: 0...0xFFFF, using: &rng) << 16, rng.next32(), rng.next32()]
                                   : [0x0A00_0000 | UInt32.random(in: 0...0xFF_FFFF, using: &rng), 0, 0, 0]
            let words = (0..<4).map { raw[$0] & IPPrefix.mask(word: $0, length: len, family: family) }
            return IPPrefix(address: IPAddress(family: family, words: words), length: len)
        }
        func ports(_ rng: inout SeededRandom, exact: Int, range: Int) -> [PortRange] {
            let roll = Int.random(in: 0..<10, using: &rng)
            if roll < exact { let p = services.randomElement(using: &rng)!; return [PortRange(p, p)] }
            if roll < exact + range {
                if Bool.random(using: &rng) { return [[PortRange(1024, 65535), PortRange(0, 1023)].randomElement(using: &rng)!] }
                let lo = UInt16.random(in: 1024...60000, using: &rng)
                return [PortRange(lo, lo + UInt16.random(in: 1...4000, using: &rng))]
            }
            return []
        }
        let rules = (0..<count).map { _ -> FirewallRule in
            let v6 = Int.random(in: 0..<100, using: &rng) < ipv6Percent
            let wide = v6 ? [32, 48] : [8, 12, 16]
            let narrow = v6 ? [64, 112, 128] : [24, 28, 32]
            let roll = Int.random(in: 0..<10, using: &rng)
            let src = roll < shape.srcNarrow ? [prefix(&rng, v6: v6, lengths: narrow)]
                : roll < shape.srcNarrow + shape.srcWide ? [prefix(&rng, v6: v6, lengths: wide)] : []
            var dst = Int.random(in: 0..<10, using: &rng) < shape.dstNarrow ? [prefix(&rng, v6: v6, lengths: narrow)] : []
            let proto: IPProtocol? = Int.random(in: 0..<10, using: &rng) < shape.anyProto ? nil : (Bool.random(using: &rng) ? .tcp : .udp)
            var dports: [PortRange] = [], sports: [PortRange] = []
            if proto != nil {
                dports = ports(&rng, exact: shape.dportExact, range: shape.dportRange)
                sports = ports(&rng, exact: shape.sportExact, range: shape.sportRange)
            }
            if src.isEmpty && dst.isEmpty && proto == nil { dst = [prefix(&rng, v6: v6, lengths: narrow)] }
            return FirewallRule(name: "", action: Bool.random(using: &rng) ? .allow : .drop,
                                src: src, dst: dst, proto: proto, srcPorts: sports, dstPorts: dports)
        }
        // As operators order them: rules naming a host or subnet on at least one side
        // first, broad ones (both sides wider than /16, or /48) last, where they do not
        // shadow the rest of the list.
        func broad(_ list: [IPPrefix]) -> Bool { list.allSatisfy { $0.length < ($0.family == .ipv4 ? 16 : 48) } }
        let ordered = rules.filter { !(broad($0.src) && broad($0.dst)) } + rules.filter { broad($0.src) && broad($0.dst) }
        return Firewall(defaultAction: .allow, rules: ordered.enumerated().map { i, rule in
            var rule = rule
            rule.name = "\(rawValue)-\(i)"
            return rule
        })
    }

    /// The rule set as an xdpctl config file for one interface.
    public static func config(_ fw: Firewall, interface: String) -> String {
        func list<T>(_ key: String, _ items: [T], _ f: (T) -> JSONValue) -> [JSONMember] {
            items.isEmpty ? [] : [JSONMember(key: key, value: .array(items.map(f)))]
        }
        func port(_ r: PortRange) -> JSONValue { r.low == r.high ? .int(r.low) : .string("\(r.low)-\(r.high)") }
        let rules: [JSONValue] = fw.rules.map { r in
            var members = [JSONMember(key: "name", value: .string(r.name)), JSONMember(key: "action", value: .string(r.action.rawValue))]
            members += list("src", r.src) { .string($0.description) }
            members += list("dst", r.dst) { .string($0.description) }
            if let p = r.proto { members.append(JSONMember(key: "proto", value: .string(p.description))) }
            members += list("src_ports", r.srcPorts, port)
            members += list("dst_ports", r.dstPorts, port)
            return .object(members)
        }
        return JSONOutput.render(.obj(["version": .int(1), "interfaces": .array([.obj([
            "name": .string(interface),
            "firewall": .obj(["default_action": .string(fw.defaultAction.rawValue), "rules": .array(rules)]),
        ])])]))
    }

    /// A packet that the given rule matches (its lowest corner, with random free fields).
    public static func packet(hitting rule: FirewallRule, rng: inout SeededRandom) -> PacketKey {
        let family = rule.src.first?.family ?? rule.dst.first?.family ?? .ipv4
        func addr(_ p: IPPrefix?, _ rng: inout SeededRandom) -> IPAddress {
            guard let p else {
                return family == .ipv4 ? IPAddress(family: .ipv4, words: [0xC000_0200 | UInt32.random(in: 0...255, using: &rng), 0, 0, 0])
                                       : IPAddress(family: .ipv6, words: [0x2001_0DB8, 0xFFFF_0000, 0, rng.next32()])
            }
            return IPAddress(family: family, words: (0..<4).map { w in UInt32.random(in: p.range(word: w), using: &rng) })
        }
        let proto = rule.proto?.number ?? 6
        let dport = rule.dstPorts.first.map { UInt16.random(in: $0.low...$0.high, using: &rng) } ?? 443
        let sport = rule.srcPorts.first.map { UInt16.random(in: $0.low...$0.high, using: &rng) } ?? 40000
        return PacketKey(src: addr(rule.src.first, &rng), dst: addr(rule.dst.first, &rng), proto: proto, srcPort: sport, dstPort: dport)
    }
}

extension SeededRandom {
    public mutating func next32() -> UInt32 { UInt32(truncatingIfNeeded: next()) }
}

extension RuleProfile {
    /// A many-flow trace of a rule set, as real traffic meets it: `count` distinct packets
    /// in a seeded random order. Nine in ten hit rules spread evenly over the whole list
    /// (try i asks rule i·n/hits; a rule of fixed fields yields its packet once, and an
    /// earlier rule may decide first, as on a real line), one in ten
    /// misses every rule: UDP between 192.0.2.0/24 and 198.51.100.0/24, which no profile
    /// rule covers (each names an address in 10/8 or 2001:db8::/32 on at least one side).
    public static func trace(_ fw: Firewall, count: Int = 10_000, seed: UInt64 = 7) -> [PacketKey] {
        precondition(!fw.rules.isEmpty && count > 0)
        var rng = SeededRandom(seed: seed)
        var seen = Set<PacketKey>(), trace: [PacketKey] = []
        let hits = count - count / 10
        var i = 0
        while trace.count < hits && i < 20 * count {
            let key = packet(hitting: fw.rules[i * fw.rules.count / hits % fw.rules.count], rng: &rng)
            if seen.insert(key).inserted { trace.append(key) }
            i += 1
        }
        while trace.count < count {
            let key = PacketKey(src: IPAddress(family: .ipv4, words: [0xC000_0200 | UInt32.random(in: 1...254, using: &rng), 0, 0, 0]),
                                dst: IPAddress(family: .ipv4, words: [0xC633_6400 | UInt32.random(in: 1...254, using: &rng), 0, 0, 0]),
                                proto: 17, srcPort: UInt16.random(in: 1024...65535, using: &rng), dstPort: UInt16.random(in: 1...1023, using: &rng))
            if seen.insert(key).inserted { trace.append(key) }
        }
        trace.shuffle(using: &rng)
        return trace
    }
}
