import CXDPCtlABI
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore

/// Fragments through the firewall: a later fragment (no ports) takes the verdict its
/// datagram's first fragment got, from dp_fw_frag; one whose first fragment has not been
/// seen is classified on what it carries.
@Suite("XDP program: firewall verdicts of fragments (PROG_TEST_RUN)", .serialized)
struct FirewallFragmentTests {
    /// Slot 1: drop UDP/53; slot 2: allow UDP/9000; slot 0: the default.
    static func firewall(default action: String) throws -> Firewall {
        try ConfigDecoder.decode("""
            {"version": 1, "interfaces": [{"name": "t", "firewall": {"default_action": "\(action)", "rules": [
              {"name": "dns-block", "action": "drop", "proto": "udp", "dst_ports": [53]},
              {"name": "app", "action": "allow", "proto": "udp", "dst_ports": [9000]}
            ]}}]}
            """).interfaces[0].firewall!
    }

    /// A datagram's first fragment (to UDP `port`) and a later one, by identification.
    static func first(_ port: UInt16, id: UInt16, v6: Bool) -> [UInt8] {
        v6 ? b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .udp(src: 4000, dst: port), extensions: [(44, PacketBuilder.fragment(offset: 0, more: true, id: UInt32(id)))])
           : b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .udp(src: 4000, dst: port), moreFragments: true, id: id)
    }

    static func later(id: UInt16, v6: Bool, offset: UInt16 = 3) -> [UInt8] {
        let body: [UInt8] = [0, 53, 0, 53] + Array(repeating: 0xCD, count: 20) // looks like a UDP/53 header
        return v6 ? b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .raw(body), proto: 17, extensions: [(44, PacketBuilder.fragment(offset: offset, more: false, id: UInt32(id)))])
                  : b.ipv4(src: "10.1.2.3", dst: "10.0.0.1", .raw(body), proto: 17, fragmentOffset: offset, id: id)
    }

    /// Runs `frame` and returns its verdict and the rule slot that counted it.
    static func verdict(_ p: LoadedProgram, _ frame: [UInt8]) throws -> (dp_verdict, UInt32?) {
        let before = try p.counters(slots: 3)
        let r = try p.run(frame)
        let after = try p.counters(slots: 3)
        let slot = (0..<3).map(UInt32.init).first { after.rules[$0, default: 0] != before.rules[$0, default: 0] }
        return (dp_verdict(rawValue: r.returnValue), slot)
    }

    @Test("default allow: the later fragments of a dropped first fragment are dropped, counted to its rule; another datagram's pass", arguments: [false, true])
    func droppedFirst(v6: Bool) throws {
        let p = try LoadedProgram.load(try Self.firewall(default: "allow"))
        #expect(try Self.verdict(p, Self.first(53, id: 0x1001, v6: v6)) == (DP_VERDICT_DROP, 1))
        #expect(try Self.verdict(p, Self.later(id: 0x1001, v6: v6)) == (DP_VERDICT_DROP, 1))
        #expect(try Self.verdict(p, Self.later(id: 0x1001, v6: v6, offset: 6)) == (DP_VERDICT_DROP, 1))
        #expect(try Self.verdict(p, Self.later(id: 0x1002, v6: v6)) == (DP_VERDICT_PASS, 0))
        #expect(try p.counters(slots: 3).reasons[Int(DP_REASON_FIREWALL.rawValue)] == 3)
    }

    @Test("default drop: allowed fragmented traffic passes in order; out of order, the fragments before the first fall to the default and the ones after pass", arguments: [false, true])
    func defaultDrop(v6: Bool) throws {
        let p = try LoadedProgram.load(try Self.firewall(default: "drop"))
        // In order.
        #expect(try Self.verdict(p, Self.first(9000, id: 0x2001, v6: v6)) == (DP_VERDICT_PASS, 2))
        #expect(try Self.verdict(p, Self.later(id: 0x2001, v6: v6)) == (DP_VERDICT_PASS, 2))
        // First last: a later fragment with no first seen is classified on what it carries.
        #expect(try Self.verdict(p, Self.later(id: 0x2002, v6: v6)) == (DP_VERDICT_DROP, 0))
        #expect(try Self.verdict(p, Self.first(9000, id: 0x2002, v6: v6)) == (DP_VERDICT_PASS, 2))
        #expect(try Self.verdict(p, Self.later(id: 0x2002, v6: v6, offset: 6)) == (DP_VERDICT_PASS, 2))
        // The same identification between other addresses is another datagram.
        let other = v6 ? b.ipv6(src: "2001:db8::9", dst: "2001:db8::2", .raw([1, 2, 3, 4, 5, 6, 7, 8]), proto: 17, extensions: [(44, PacketBuilder.fragment(offset: 3, more: false, id: 0x2001))])
                       : b.ipv4(src: "10.1.2.9", dst: "10.0.0.1", .raw([1, 2, 3, 4, 5, 6, 7, 8]), proto: 17, fragmentOffset: 3, id: 0x2001)
        #expect(try Self.verdict(p, other) == (DP_VERDICT_DROP, 0))
    }

    @Test("overlapping first fragments: the last one's verdict decides the later fragments", arguments: [false, true])
    func overlapping(v6: Bool) throws {
        let p = try LoadedProgram.load(try Self.firewall(default: "allow"))
        #expect(try Self.verdict(p, Self.first(9000, id: 0x3001, v6: v6)) == (DP_VERDICT_PASS, 2))
        #expect(try Self.verdict(p, Self.first(53, id: 0x3001, v6: v6)) == (DP_VERDICT_DROP, 1))
        #expect(try Self.verdict(p, Self.later(id: 0x3001, v6: v6)) == (DP_VERDICT_DROP, 1))
    }
}
