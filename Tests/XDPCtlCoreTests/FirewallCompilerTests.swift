import CXDPCtlABI
import Testing
import XDPCtlWorkloads
@testable import XDPCtlCore

@Suite("Firewall compiler")
struct FirewallCompilerTests {
    /// The compiled tree must decide every packet exactly as first-match over the rules does.
    @Test("differential: tree vs first-match reference, 100k+ packets", arguments: [
        (rules: 5, sets: 40, packets: 1000, seed: UInt64(1)),
        (rules: 60, sets: 30, packets: 1500, seed: 2),
        (rules: 200, sets: 6, packets: 5000, seed: 3),
    ])
    func differential(rules: Int, sets: Int, packets: Int, seed: UInt64) throws {
        var gen = RuleSetGenerator(rng: SeededRandom(seed: seed))
        var checked = 0
        for set in 0..<sets {
            let fw = gen.firewall(rules: rules)
            // Every other set is compiled as one too big for wide trees is (compact cuts),
            // and every third moves rules copied more than twice to the next tree.
            var compiler = FirewallCompiler()
            if set % 2 == 1 { compiler.minOccupancy = 4 }
            if set % 3 == 2 { compiler.maxCopies = 2 }
            let table = try compiler.compile(fw, slots: sequentialSlots(fw))
            #expect(table.depth <= Int(DP_FW_MAX_DEPTH))
            #expect(table.largestLeaf <= Int(DP_FW_LEAF_MAX))
            #expect(table.trees <= Int(DP_FW_MAX_TREES))
            for _ in 0..<packets {
                let key = gen.packet(fw)
                let expected = referenceClassify(fw, key)
                let got = table.nodes[table.classify(key.words)]
                let expectedSlot = expected.rule.map { UInt32($0 + 1) } ?? 0
                let expectedAction = UInt8(expected.action == .allow ? DP_FW_ALLOW.rawValue : DP_FW_DROP.rawValue)
                if got.slot != expectedSlot || got.action != expectedAction {
                    Issue.record("\(key): tree chose slot \(got.slot), reference rule \(expected.rule.map(String.init) ?? "default")")
                    return
                }
                checked += 1
            }
        }
        #expect(checked == sets * packets)
    }

    /// The walk's work, as the benchmark's cost model reads it: trees walked in pairs (a
    /// pair's levels are its deeper walk's), bounded by the table's shape.
    @Test func walkWorkIsBoundedByTheShape() throws {
        let fw = RuleProfile.acl(count: 1000, seed: 5)
        let table = try FirewallCompiler().compile(fw, slots: sequentialSlots(fw))
        #expect(table.trees >= 3, "the rule set must need several trees for pairs to matter")
        var rng = SeededRandom(seed: 6)
        var total = FirewallTable.Work()
        for _ in 0..<200 {
            let key = RuleProfile.packet(hitting: fw.rules[Int(rng.next() % UInt64(fw.rules.count))], rng: &rng)
            var work = FirewallTable.Work()
            #expect(table.classify(key.words, counting: &work) == table.classify(key.words))
            #expect(work.trees <= table.trees)
            #expect(work.levels <= work.cuts && work.cuts <= 2 * work.levels)
            #expect(work.levels <= (table.trees + 1) / 2 * table.depth)
            #expect(work.checks <= work.trees * Int(DP_FW_LEAF_MAX))
            total.levels += work.levels
            total.cuts += work.cuts
        }
        #expect(total.levels < total.cuts, "walking in pairs shortens the chain of cut nodes")
    }

    /// An ACL-shaped set decides like the reference in wide trees, and in the compact
    /// trees the compiler falls back to when the wide ones outgrow maxNodes.
    @Test(arguments: [(rules: 10_000, fitsWide: true), (rules: 10_000, fitsWide: false)])
    func aclProfile(rules: Int, fitsWide: Bool) throws {
        let fw = RuleProfile.acl(count: rules, seed: 7)
        var compiler = FirewallCompiler()
        let wide = try compiler.compile(fw, slots: sequentialSlots(fw))
        compiler.minOccupancy = 4
        let compact = try compiler.compile(fw, slots: sequentialSlots(fw))
        #expect(compact.nodes.count < wide.nodes.count)
        compiler = FirewallCompiler()
        if !fitsWide { compiler.maxNodes = compact.nodes.count }
        let table = try compiler.compile(fw, slots: sequentialSlots(fw))
        #expect(table.nodes.count == (fitsWide ? wide : compact).nodes.count)
        var rng = SeededRandom(seed: 8)
        for i in 0..<3000 {
            let key = i % 4 == 3
                ? PacketKey(src: IPAddress(family: .ipv4, words: [0x0A00_0000 | rng.next32() & 0xFF_FFFF, 0, 0, 0]),
                            dst: IPAddress(family: .ipv4, words: [0x0A00_0000 | rng.next32() & 0xFF_FFFF, 0, 0, 0]),
                            proto: 6, srcPort: 40000, dstPort: 443)
                : RuleProfile.packet(hitting: fw.rules[Int(rng.next() % UInt64(rules))], rng: &rng)
            let expected = referenceClassify(fw, key).rule.map { UInt32($0 + 1) } ?? 0
            let got = table.nodes[table.classify(key.words)].slot
            guard got == expected else { Issue.record("\(key): slot \(got), reference \(expected)"); return }
        }
    }

    @Test func defaultOnlyTableIsOneLeaf() throws {
        let table = try FirewallCompiler().compile(Firewall(defaultAction: .drop, rules: []), slots: [:])
        #expect(table.trees == 0)
        let key = PacketKey(src: IPAddress("10.0.0.1")!, dst: IPAddress("10.0.0.2")!, proto: 6, srcPort: 1, dstPort: 2)
        #expect(table.classify(key.words) == 0)
        #expect(table.nodes[0].action == UInt8(DP_FW_DROP.rawValue) && table.nodes[0].slot == 0)
    }

    @Test func portRulesNeverMatchPortlessPackets() throws {
        let fw = Firewall(defaultAction: .allow, rules: [
            FirewallRule(name: "all-tcp-ports", action: .drop, src: [], dst: [], proto: .tcp,
                         srcPorts: [], dstPorts: [PortRange(0, 65535)]),
        ])
        let table = try FirewallCompiler().compile(fw, slots: sequentialSlots(fw))
        let fragment = PacketKey(src: IPAddress("10.0.0.1")!, dst: IPAddress("10.0.0.2")!, proto: 6)
        #expect(table.nodes[table.classify(fragment.words)].slot == 0)
        let first = PacketKey(src: IPAddress("10.0.0.1")!, dst: IPAddress("10.0.0.2")!, proto: 6, srcPort: 9, dstPort: 0)
        #expect(table.nodes[table.classify(first.words)].slot == 1)
    }

    @Test func identicalRulesShadowOneAnother() {
        let rule = { (i: Int) in FirewallRule(name: "r\(i)", action: .drop, src: [try! IPPrefix("10.0.0.0/8")], dst: [],
                                            proto: nil, srcPorts: [], dstPorts: []) }
        let fw = Firewall(defaultAction: .allow, rules: (0..<40).map(rule))
        let table = try? FirewallCompiler().compile(fw, slots: sequentialSlots(fw))
        #expect(table != nil)
        #expect(table?.largestLeaf ?? 99 <= 2)
    }
}

/// Issue 3's correctness at scale: 100,000-rule sets of every profile, one all IPv4 and
/// one all IPv6, decide like the reference on packets hitting rules across the list and
/// on packets that hit none.
@Suite("Firewall compiler at 100k rules")
struct FirewallScaleTests {
    @Test(arguments: [(RuleProfile.acl, 0), (.acl, 100), (.fw, 0), (.fw, 100), (.ipc, 0), (.ipc, 100)])
    func hundredThousandRules(profile: RuleProfile, ipv6Percent: Int) throws {
        let fw = profile.rules(count: 100_000, seed: 11, ipv6Percent: ipv6Percent)
        let table = try FirewallCompiler().compile(fw, slots: sequentialSlots(fw))
        var rng = SeededRandom(seed: 12)
        var decidedBy = Set<UInt32>()
        var work = FirewallTable.Work()
        for i in 0..<400 {
            let target = Int(rng.next() % UInt64(fw.rules.count))
            var key = RuleProfile.packet(hitting: fw.rules[target], rng: &rng)
            if i % 4 == 3 { key = PacketKey(src: key.src, dst: key.dst, proto: 47) } // GRE: only any-protocol rules match
            let expected = referenceClassify(fw, key).rule.map { UInt32($0 + 1) } ?? 0
            let got = table.nodes[table.classify(key.words, counting: &work)].slot
            guard got == expected else { Issue.record("\(key): slot \(got), reference \(expected)"); return }
            decidedBy.insert(got)
        }
        // The packets exercised the whole list and the default, not a handful of rules.
        #expect(decidedBy.contains(0) && decidedBy.count > 200 && decidedBy.contains { $0 > 50_000 })
        // And the walk stayed short: three trees (one pair and one alone), and under two
        // levels of cuts per packet (wide cuts at the big nodes).
        #expect(table.trees <= 3 && work.levels < 2 * 400)
    }
}

@Suite("Rate-limit compiler")
struct RateLimitCompilerTests {
    func limits(_ json: String) throws -> [RateLimit] {
        try ConfigDecoder.decode(#"{"version": 1, "interfaces": [{"name": "t", "rate_limits": ["# + json + "]}]}").interfaces[0].rateLimits
    }

    @Test func entriesCarryTheirLimitsParameters() throws {
        let ls = try limits(#"""
            {"name": "syn", "proto": "tcp", "tcp_flags": ["syn"], "dst_ports": [22, 80], "per": "source", "source_ipv4_prefix": 24, "packets_per_second": 100},
            {"name": "bytes", "src": ["10.0.0.0/8", "2001:db8::/32"], "per": "rule", "bytes_per_second": 1000000, "burst_bytes": 3000}
            """#)
        let e = try RateLimitCompiler.compile(ls, slots: ["syn": 4, "bytes": 9])
        #expect(e[0].count == 4 && e.count == 5, "header + 2 port boxes + 2 family boxes")
        #expect(e[1].slot == 4 && e[1].scope == UInt8(DP_RL_PER_SOURCE.rawValue) && e[1].prefix_v4 == 24 && e[1].prefix_v6 == 128)
        #expect(e[1].tcp_flags_mask == 0x02 && e[1].tcp_flags_value == 0x02)
        #expect(e[1].pkt_cost == 10_000_000 << 4 && e[1].pkt_window == 10 * e[1].pkt_cost, "default burst: a tenth of a second")
        #expect(e[3].slot == 9 && e[3].byte_cost == 1000 << 16 && e[3].byte_window == 3_000_000 << 4 && e[3].pkt_cost == 0)
    }

    @Test func tooManyEntriesAreRefused() throws {
        let ports = (1...70).map(String.init).joined(separator: ", ")
        let ls = try limits(#"{"name": "many", "proto": "udp", "dst_ports": [\#(ports)], "per": "rule", "packets_per_second": 1}"#)
        #expect(throws: CapacityError.self) { try RateLimitCompiler.compile(ls, slots: ["many": 1]) }
    }
}
