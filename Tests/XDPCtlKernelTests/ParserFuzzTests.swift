import CXDPCtlABI
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore

/// The XDP program's parser under random mutation, through PROG_TEST_RUN, in bounded
/// time (seeded: a finding replays). The firewall drops everything, so the only frames
/// that may pass are those that are not IP: after at most DP_VLAN_MAX VLAN tags, an
/// EtherType other than IPv4's and IPv6's (the reference below, a few lines of Swift).
/// Anything else that passes went round the firewall. No frame may abort.
@Suite("XDP program: parser fuzzing under default drop (PROG_TEST_RUN)", .serialized)
struct ParserFuzzTests {
    /// Whether `frame` carries IP as the parser must see it: its EtherType after at most
    /// DP_VLAN_MAX tags (more tags: malformed, so dropped, never passed).
    static func carriesIP(_ frame: [UInt8]) -> Bool? {
        var at = 12, tags = 0
        while at + 2 <= frame.count {
            let type = UInt16(frame[at]) << 8 | UInt16(frame[at + 1])
            if type == 0x8100 || type == 0x88A8 {
                tags += 1
                if tags > Int(DP_VLAN_MAX) { return nil }
                at += 4
                continue
            }
            return type == 0x0800 || type == 0x86DD
        }
        return nil // too short to say: must not pass as IP either
    }

    @Test("100,000 mutants of IPv4, IPv6, VLAN, fragment and extension-header frames: none aborts, none that carries IP passes a drop-everything firewall")
    func mutants() throws {
        let fw = try ConfigDecoder.decode(#"{"version": 1, "interfaces": [{"name": "t", "firewall": {"default_action": "drop", "rules": [{"name": "x", "action": "drop", "proto": "udp", "dst_ports": [9]}]}}]}"#).interfaces[0].firewall!
        let p = try LoadedProgram.load(fw)
        let b = PacketBuilder(), tagged = PacketBuilder(vlans: [10, 20])
        let seeds: [[UInt8]] = [
            b.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .tcp(src: 1000, dst: 22)),
            b.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .udp(src: 1000, dst: 53), options: [1, 1, 1, 1]),
            b.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .udp(src: 1000, dst: 53), moreFragments: true),
            b.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .raw([1, 2, 3, 4, 5, 6, 7, 8]), proto: 17, fragmentOffset: 3),
            b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .udp(src: 1, dst: 2), extensions: [(0, PacketBuilder.options8), (60, PacketBuilder.options8)]),
            b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .tcp(src: 1, dst: 80), extensions: [(44, PacketBuilder.fragment(offset: 0, more: true))]),
            b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .icmp(type: 128)),
            tagged.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .udp(src: 5, dst: 6)),
            tagged.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .tcp(src: 1, dst: 443)),
        ]
        var rng = SeededRandom(seed: 0x7061_7273_6572)
        var findings: [String] = [], passed = 0, dropped = 0
        for round in 0..<100_000 {
            var f = seeds[round % seeds.count]
            for _ in 0...rng.below(3) {
                let i = rng.below(f.count)
                switch rng.below(6) {
                case 0, 1: f[i] = UInt8(truncatingIfNeeded: rng.next())   // any byte
                case 2: f[12 + rng.below(min(f.count - 12, 60))] = [0x81, 0x00, 0x86, 0xDD, 0x08, 0x88, 0xA8, 0x2C, 0x3C, 0x00, 0xFF][rng.below(11)]
                case 3: f = Array(f.prefix(max(14, i)))                     // truncated
                case 4: f.insert(contentsOf: [0x81, 0x00, 0x00, UInt8(rng.below(256))], at: 12) // one more tag
                default: f += Array(repeating: UInt8(truncatingIfNeeded: rng.next()), count: rng.below(64))
                }
            }
            guard f.count >= 14 else { continue }
            let r = try p.run(f)
            if r.returnValue == DP_VERDICT_ABORTED.rawValue { findings.append("aborted: \(f)") }
            if r.returnValue == DP_VERDICT_PASS.rawValue {
                passed += 1
                if Self.carriesIP(f) != false { findings.append("passed though it may carry IP: \(f.prefix(80))") }
            } else {
                dropped += 1
            }
        }
        print("parser fuzzing: \(passed) passed (not IP), \(dropped) dropped, \(findings.count) findings")
        #expect(findings.isEmpty, "\(findings.prefix(3))")
    }
}
