import CXDPCtlABI
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore

/// Rate limits in the XDP program, with its maps and the kernel clock. Rates are 1 packet
/// per second, so the refill during a test (well under a second) never adds a token.
@Suite("Rate limits in the XDP program")
struct RateLimitTests {
    static func limits(_ json: String) throws -> [RateLimit] {
        try ConfigDecoder.decode(#"{"version": 1, "interfaces": [{"name": "t", "rate_limits": ["# + json + "]}]}").interfaces[0].rateLimits
    }

    func verdicts(_ p: LoadedProgram, _ frames: [[UInt8]]) throws -> [UInt32] {
        try frames.map { try p.run($0).returnValue }
    }

    let pass = DP_VERDICT_PASS.rawValue, drop = DP_VERDICT_DROP.rawValue
    let b = PacketBuilder()

    @Test("per rule: the burst passes, the rest drops as rate_limit; unmatched traffic is not charged")
    func perRule() throws {
        let p = try LoadedProgram.load()
        try p.installLimits(try Self.limits(#"{"name": "dns", "proto": "udp", "dst_ports": [53], "per": "rule", "packets_per_second": 1, "burst_packets": 5}"#))
        let dns = b.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .udp(src: 4000, dst: 53))
        #expect(try verdicts(p, Array(repeating: dns, count: 8)) == Array(repeating: pass, count: 5) + Array(repeating: drop, count: 3))
        #expect(try verdicts(p, [b.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .udp(src: 4000, dst: 54))]) == [pass])
        #expect(try p.limitCounters(1) == [5, 3])
        let c = try p.counters(slots: 1)
        #expect(c.reasons[Int(DP_REASON_RATE_LIMIT.rawValue)] == 3 && c.verdicts[Int(DP_VERDICT_PASS.rawValue)] == 6, "\(c)")
    }

    @Test("per source: each address has its own bucket, so a flooding source does not starve another")
    func perSource() throws {
        let p = try LoadedProgram.load()
        try p.installLimits(try Self.limits(#"{"name": "src", "per": "source", "packets_per_second": 1, "burst_packets": 2}"#))
        let from = { (a: String) in self.b.ipv4(src: a, dst: "10.0.0.2", .udp(src: 4000, dst: 9)) }
        #expect(try verdicts(p, Array(repeating: from("10.0.0.1"), count: 4)) == [pass, pass, drop, drop])
        #expect(try verdicts(p, Array(repeating: from("10.0.0.3"), count: 3)) == [pass, pass, drop])
        let v6 = { (a: String) in self.b.ipv6(src: a, dst: "2001:db8::2", .udp(src: 4000, dst: 9)) }
        #expect(try verdicts(p, [v6("2001:db8::1"), v6("2001:db8::1"), v6("2001:db8::1"), v6("2001:db8::5")]) == [pass, pass, drop, pass])
        #expect(try p.limitCounters(1) == [7, 4])
    }

    @Test("per source with prefixes: a /24 (IPv4) or a /64 (IPv6) shares one bucket")
    func perPrefix() throws {
        let p = try LoadedProgram.load()
        try p.installLimits(try Self.limits(#"{"name": "nets", "per": "source", "source_ipv4_prefix": 24, "source_ipv6_prefix": 64, "packets_per_second": 1, "burst_packets": 2}"#))
        let v4 = { (a: String) in self.b.ipv4(src: a, dst: "10.0.0.2", .udp(src: 4000, dst: 9)) }
        #expect(try verdicts(p, [v4("10.1.1.1"), v4("10.1.1.200"), v4("10.1.1.7"), v4("10.1.2.1")]) == [pass, pass, drop, pass])
        let v6 = { (a: String) in self.b.ipv6(src: a, dst: "2001:db8::2", .udp(src: 4000, dst: 9)) }
        #expect(try verdicts(p, [v6("2001:db8:0:1::1"), v6("2001:db8:0:1:ffff::9"), v6("2001:db8:0:1::2"), v6("2001:db8:0:2::1")])
                == [pass, pass, drop, pass])
    }

    @Test("tcp_flags: a SYN limit charges segments with SYN set and leaves the rest alone")
    func tcpFlags() throws {
        let p = try LoadedProgram.load()
        try p.installLimits(try Self.limits(#"{"name": "syn", "proto": "tcp", "tcp_flags": ["syn"], "per": "rule", "packets_per_second": 1, "burst_packets": 1}"#))
        let seg = { (flags: UInt8) in self.b.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .tcp(src: 4000, dst: 80, flags: flags)) }
        #expect(try verdicts(p, [seg(0x02), seg(0x02), seg(0x10), seg(0x18), seg(0x12)]) == [pass, drop, pass, pass, drop])
        #expect(try p.limitCounters(1) == [1, 2])
    }

    @Test("the first matching limit charges the packet; firewall drops are never charged")
    func firstMatchAfterFirewall() throws {
        let fw = Firewall(defaultAction: .allow, rules: [
            FirewallRule(name: "block", action: .drop, src: [try IPPrefix("10.9.0.0/16")], dst: [], proto: nil, srcPorts: [], dstPorts: []),
        ])
        let p = try LoadedProgram.load()
        try p.installLimits(try Self.limits(#"""
            {"name": "narrow", "src": ["10.0.0.1"], "per": "rule", "packets_per_second": 1, "burst_packets": 1},
            {"name": "wide", "src": ["10.0.0.0/8"], "per": "rule", "packets_per_second": 1, "burst_packets": 1}
            """#), firewall: fw)
        let from = { (a: String) in self.b.ipv4(src: a, dst: "10.0.0.2", .udp(src: 4000, dst: 9)) }
        #expect(try verdicts(p, [from("10.0.0.1"), from("10.0.0.1"), from("10.5.0.1"), from("10.9.0.1"), from("10.5.0.1")]) == [pass, drop, pass, drop, drop])
        #expect(try p.limitCounters(1) == [1, 1] && p.limitCounters(2) == [1, 1])
    }
}
