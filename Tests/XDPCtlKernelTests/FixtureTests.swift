import CXDPCtlABI
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore

/// The rule set every fixture runs against.
let fixtureFirewall = try! ConfigDecoder.decode("""
    {"version": 1, "interfaces": [{"name": "t", "firewall": {"default_action": "allow", "rules": [
      {"name": "blocklist", "action": "drop", "src": ["198.51.100.0/24", "2001:db8:bad::/48"]},
      {"name": "ssh-admins", "action": "allow", "proto": "tcp", "dst_ports": [22], "src": ["10.0.0.0/8", "2001:db8:a::/48"]},
      {"name": "ssh-others", "action": "drop", "proto": "tcp", "dst_ports": [22]},
      {"name": "udp-high", "action": "drop", "proto": "udp", "dst_ports": ["1000-2000"]},
      {"name": "icmp-net", "action": "drop", "proto": "icmp", "src": ["192.0.2.0/24"]},
      {"name": "icmpv6-net", "action": "drop", "proto": "icmpv6", "src": ["2001:db8:1::/48"]}
    ]}}]}
    """).interfaces[0].firewall!

/// One row: a frame, the verdict and drop reason it must get, and the rule slot that
/// must count it (0 = the default action, nil = no rule counts it).
struct Fixture: CustomTestStringConvertible, Sendable {
    let name: String
    let packet: [UInt8]
    let verdict: dp_verdict
    let reason: dp_reason
    let slot: UInt32?
    var testDescription: String { name }
}

let b = PacketBuilder()
let v4 = PacketBuilder.self
/// Bytes that read as UDP ports 4000 -> 1500 if parsed as an L4 header.
let looksLikeUDP1500 = v4.be16(4000) + v4.be16(1500) + [0, 24, 0, 0] + [UInt8](repeating: 0, count: 16)

let fixtures: [Fixture] = [
    Fixture(name: "v4 tcp/22 from an admin net passes (ssh-admins)", packet: b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .tcp(src: 40000, dst: 22)), verdict: DP_VERDICT_PASS, reason: DP_REASON_NONE, slot: 2),
    Fixture(name: "v4 tcp/22 from elsewhere drops (ssh-others)", packet: b.ipv4(src: "192.0.2.1", dst: "10.0.0.1", .tcp(src: 40000, dst: 22)), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 3),
    Fixture(name: "v4 udp/1500 drops (udp-high)", packet: b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .udp(src: 5353, dst: 1500)), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 4),
    Fixture(name: "v4 udp/2001 passes (default)", packet: b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .udp(src: 5353, dst: 2001)), verdict: DP_VERDICT_PASS, reason: DP_REASON_NONE, slot: 0),
    Fixture(name: "v4 blocklisted source drops (blocklist first)", packet: b.ipv4(src: "198.51.100.7", dst: "10.0.0.1", .tcp(src: 1, dst: 22)), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 1),
    Fixture(name: "v6 blocklisted source drops", packet: b.ipv6(src: "2001:db8:bad::1", dst: "2001:db8::2", .tcp(src: 1, dst: 80)), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 1),
    Fixture(name: "v6 tcp/22 from an admin net passes", packet: b.ipv6(src: "2001:db8:a::9", dst: "2001:db8::2", .tcp(src: 1, dst: 22)), verdict: DP_VERDICT_PASS, reason: DP_REASON_NONE, slot: 2),
    Fixture(name: "v6 tcp/22 from elsewhere drops", packet: b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .tcp(src: 1, dst: 22)), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 3),
    Fixture(name: "v6 udp/1500 behind hop-by-hop and destination options drops", packet: b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .udp(src: 1, dst: 1500), extensions: [(0, v4.options8), (60, v4.options8)]), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 4),
    Fixture(name: "v6 first fragment udp/1500 drops", packet: b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .udp(src: 1, dst: 1500), extensions: [(44, v4.fragment(offset: 0, more: true))]), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 4),
    Fixture(name: "v6 non-first fragment is not read as udp/1500", packet: b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .raw(looksLikeUDP1500), proto: 17, extensions: [(44, v4.fragment(offset: 3, more: false))]), verdict: DP_VERDICT_PASS, reason: DP_REASON_NONE, slot: 0),
    Fixture(name: "v4 non-first fragment is not read as udp/1500", packet: b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .raw(looksLikeUDP1500), proto: 17, fragmentOffset: 3), verdict: DP_VERDICT_PASS, reason: DP_REASON_NONE, slot: 0),
    Fixture(name: "v4 first fragment udp/1500 drops", packet: b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .udp(src: 1, dst: 1500), moreFragments: true), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 4),
    Fixture(name: "v4 with IP options, udp/1500 drops", packet: b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .udp(src: 1, dst: 1500), options: [1, 1, 1, 0, 0x94, 4, 0, 0]), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 4),
    Fixture(name: "802.1Q tagged udp/1500 drops", packet: PacketBuilder(vlans: [100]).ipv4(src: "10.1.2.3", dst: "10.0.0.1", .udp(src: 1, dst: 1500)), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 4),
    Fixture(name: "three VLAN tags are malformed, never passed unclassified", packet: PacketBuilder(vlans: [0, 0, 0]).ipv4(src: "192.0.2.1", dst: "10.0.0.1", .tcp(src: 1, dst: 22)), verdict: DP_VERDICT_DROP, reason: DP_REASON_MALFORMED, slot: nil),
    Fixture(name: "v6 behind more extension headers than DP_IPV6_EXT_MAX is malformed", packet: b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .tcp(src: 1, dst: 22), extensions: Array(repeating: (60, v4.options8), count: Int(DP_IPV6_EXT_MAX) + 1)), verdict: DP_VERDICT_DROP, reason: DP_REASON_MALFORMED, slot: nil),
    Fixture(name: "QinQ tagged v6 tcp/22 drops", packet: PacketBuilder(vlans: [100, 200]).ipv6(src: "2001:db8::1", dst: "2001:db8::2", .tcp(src: 1, dst: 22)), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 3),
    Fixture(name: "icmp from a blocked net drops", packet: b.ipv4(src: "192.0.2.5", dst: "10.0.0.1", .icmp(type: 8)), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 5),
    Fixture(name: "icmp from elsewhere passes", packet: b.ipv4(src: "10.9.9.9", dst: "10.0.0.1", .icmp(type: 8)), verdict: DP_VERDICT_PASS, reason: DP_REASON_NONE, slot: 0),
    Fixture(name: "icmpv6 from a blocked net drops", packet: b.ipv6(src: "2001:db8:1::5", dst: "2001:db8::2", .icmp(type: 128)), verdict: DP_VERDICT_DROP, reason: DP_REASON_FIREWALL, slot: 6),
    Fixture(name: "ARP passes uncounted by rules", packet: PacketBuilder(etherType: 0x0806).ethernet(0x0806, [UInt8](repeating: 0, count: 28)), verdict: DP_VERDICT_PASS, reason: DP_REASON_NONE, slot: nil),
    Fixture(name: "truncated IPv4 header is malformed", packet: Array(b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .udp(src: 1, dst: 2)).prefix(14 + 12)), verdict: DP_VERDICT_DROP, reason: DP_REASON_MALFORMED, slot: nil),
    Fixture(name: "IPv4 ihl below 5 is malformed", packet: { var p = b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .udp(src: 1, dst: 2)); p[14] = 0x44; return p }(), verdict: DP_VERDICT_DROP, reason: DP_REASON_MALFORMED, slot: nil),
    Fixture(name: "IPv4 total length past the frame is malformed", packet: { var p = b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .udp(src: 1, dst: 2)); p[16] = 0x0F; return p }(), verdict: DP_VERDICT_DROP, reason: DP_REASON_MALFORMED, slot: nil),
    Fixture(name: "TCP data offset below 5 is malformed", packet: b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .tcp(src: 1, dst: 80, dataOffset: 4)), verdict: DP_VERDICT_DROP, reason: DP_REASON_MALFORMED, slot: nil),
    Fixture(name: "truncated UDP header is malformed", packet: b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .raw([0, 1, 0]), proto: 17, payload: []), verdict: DP_VERDICT_DROP, reason: DP_REASON_MALFORMED, slot: nil),
    Fixture(name: "IPv6 with 9 extension headers is malformed", packet: b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .udp(src: 1, dst: 2), extensions: Array(repeating: (60, v4.options8), count: 9)), verdict: DP_VERDICT_DROP, reason: DP_REASON_MALFORMED, slot: nil),
    Fixture(name: "IPv6 version field wrong is malformed", packet: { var p = b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .udp(src: 1, dst: 2)); p[14] = 0x40; return p }(), verdict: DP_VERDICT_DROP, reason: DP_REASON_MALFORMED, slot: nil),
]

@Suite("XDP program: PROG_TEST_RUN fixtures", .serialized)
struct FixtureTests {
    @Test("every program loads and its maps match the ABI")
    func loadsWithABILayout() throws {
        let p = try LoadedProgram.load()
        #expect(try p.stats.info().valueSize == MemoryLayout<dp_if_stats>.size)
        #expect(try p.ruleStats.info().valueSize == MemoryLayout<dp_rule_stats>.size)
        #expect(try p.ruleStats.info().maxEntries == Int(DP_MAX_RULES))
        #expect(MemoryLayout<dp_fw_node>.size == MemoryLayout<dp_fw_node>.stride)
        #expect(InterfaceStats.verdictNames.count == Int(DP_VERDICT__MAX.rawValue))
        #expect(InterfaceStats.reasonNames.count == Int(DP_REASON__MAX.rawValue))
    }

    @Test("verdict, output bytes and counter deltas", arguments: fixtures)
    func fixture(_ f: Fixture) throws {
        let p = try LoadedProgram.load(fixtureFirewall)
        let slots = fixtureFirewall.rules.count + 1
        let before = try p.counters(slots: slots)
        let result = try p.run(f.packet)
        #expect(result.returnValue == f.verdict.rawValue, "verdict")
        #expect(result.output == f.packet, "XDP must not rewrite the frame")
        var expected = before
        expected.rx += 1
        expected.verdicts[Int(f.verdict.rawValue)] += 1
        if f.verdict == DP_VERDICT_DROP { expected.reasons[Int(f.reason.rawValue)] += 1 }
        if let slot = f.slot { expected.rules[slot, default: 0] += 1 }
        #expect(try p.counters(slots: slots) == expected)
    }

    @Test("no firewall configured: every IP packet passes and is counted")
    func noFirewall() throws {
        let p = try LoadedProgram.load()
        let r = try p.run(b.ipv4(src: "198.51.100.7", dst: "10.0.0.1", .udp(src: 1, dst: 1500)))
        #expect(r.returnValue == DP_VERDICT_PASS.rawValue)
        #expect(try p.counters(slots: 1).verdicts[Int(DP_VERDICT_PASS.rawValue)] == 1)
    }
}
