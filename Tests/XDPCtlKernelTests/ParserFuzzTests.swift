import CXDPCtlABI
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore

/// The XDP program's parser under random mutation, through PROG_TEST_RUN, in bounded
/// time (seeded: a finding replays). Every mutant's verdict is checked against a
/// reference written here from the parsing rules of bpf/lib/parsing.h (not from its
/// code): Ethernet and at most DP_VLAN_MAX tags, IPv4 with options and its lengths, IPv6
/// and up to DP_IPV6_EXT_MAX extension headers, the L4 header a first fragment must
/// carry; then the first-match reference classifier, and later fragments taking their
/// first fragment's verdict. No frame may abort.
@Suite("XDP program: parser fuzzing against a reference (PROG_TEST_RUN)", .serialized)
struct ParserFuzzTests {
    enum Parsed {
        case notIP, malformed
        /// `fragment`: the datagram's (addresses, id, protocol, family) when the frame is
        /// a fragment, with whether it is the first.
        case ip(PacketKey, fragment: (key: [UInt32], first: Bool)?)
    }

    /// The frame as the data path must read it.
    static func parse(_ f: [UInt8]) -> Parsed {
        func u16(_ i: Int) -> UInt32 { UInt32(f[i]) << 8 | UInt32(f[i + 1]) }
        func u32(_ i: Int) -> UInt32 { u16(i) << 16 | u16(i + 2) }
        guard f.count >= 14 else { return .malformed }
        var type = u16(12), at = 14, tags = 0
        while type == 0x8100 || type == 0x88A8 {
            // More tags than the parser reads: the kernel would strip VLAN 0 tags and
            // deliver what is behind them, so it is malformed, not "not IP".
            guard tags < Int(DP_VLAN_MAX), at + 4 <= f.count else { return .malformed }
            type = u16(at + 2)
            at += 4
            tags += 1
        }
        let room = f.count - at
        var src: [UInt32], dst: [UInt32], proto: UInt8, l4: Int, firstOrWhole = true
        var fragment: (id: UInt32, first: Bool)?
        switch type {
        case 0x0800:
            guard at + 20 <= f.count, f[at] >> 4 == 4 else { return .malformed }
            let ihl = Int(f[at] & 0xF) * 4, total = Int(u16(at + 2))
            guard ihl >= 20, total >= ihl, total <= room else { return .malformed }
            (src, dst, proto) = ([u32(at + 12), 0, 0, 0], [u32(at + 16), 0, 0, 0], f[at + 9])
            let offset = u16(at + 6) & 0x1FFF, more = u16(at + 6) & 0x2000
            firstOrWhole = offset == 0
            if offset | more != 0 { fragment = (u16(at + 4), offset == 0) }
            l4 = at + ihl
        case 0x86DD:
            guard at + 40 <= f.count, f[at] >> 4 == 6, 40 + Int(u16(at + 4)) <= room else { return .malformed }
            src = (0..<4).map { u32(at + 8 + 4 * $0) }
            dst = (0..<4).map { u32(at + 24 + 4 * $0) }
            var next = f[at + 6], pos = at + 40, done = false
            for _ in 0..<Int(DP_IPV6_EXT_MAX) where !done {
                switch next {
                case 0, 43, 60, 135: // hop-by-hop, routing, destination options, mobility
                    guard pos + 2 <= f.count else { return .malformed }
                    (next, pos) = (f[pos], pos + (Int(f[pos + 1]) + 1) * 8)
                case 51: // AH: its length in 4-byte units, minus 2
                    guard pos + 2 <= f.count else { return .malformed }
                    (next, pos) = (f[pos], pos + (Int(f[pos + 1]) + 2) * 4)
                case 44:
                    guard pos + 8 <= f.count else { return .malformed }
                    let off = u16(pos + 2)
                    next = f[pos]
                    if off & 0xFFF8 != 0 {
                        (fragment, firstOrWhole, done) = ((u32(pos + 4), false), false, true)
                    } else if off & 1 != 0 {
                        fragment = (u32(pos + 4), true)
                    }
                    pos += 8
                default:
                    done = true
                }
            }
            guard done else { return .malformed } // a longer chain than the parser walks
            (proto, l4) = (next, pos)
        default:
            return .notIP
        }
        var ports: (UInt16, UInt16)?
        if firstOrWhole {
            switch proto {
            case 6:
                guard l4 + 20 <= f.count, f[l4 + 12] >> 4 >= 5 else { return .malformed }
                ports = (UInt16(u16(l4)), UInt16(u16(l4 + 2)))
            case 17:
                guard l4 + 8 <= f.count else { return .malformed }
                ports = (UInt16(u16(l4)), UInt16(u16(l4 + 2)))
            case 1, 58:
                guard l4 + 4 <= f.count else { return .malformed }
            default:
                break
            }
        }
        let family: AddressFamily = type == 0x0800 ? .ipv4 : .ipv6
        let key = PacketKey(src: IPAddress(family: family, words: src), dst: IPAddress(family: family, words: dst),
                            proto: proto, srcPort: ports?.0, dstPort: ports?.1)
        return .ip(key, fragment: fragment.map { (src + dst + [$0.id, UInt32(proto), family == .ipv4 ? 4 : 6], $0.first) })
    }

    @Test("100,000 mutants of IPv4, IPv6, VLAN, fragment and extension-header frames: every verdict is the reference's, none aborts")
    func mutants() throws {
        let fw = try ConfigDecoder.decode(#"""
            {"version": 1, "interfaces": [{"name": "t", "firewall": {"default_action": "drop", "rules": [
              {"name": "ssh", "action": "allow", "proto": "tcp", "src": ["10.0.0.0/8"], "dst_ports": [22]},
              {"name": "dns", "action": "drop", "proto": "udp", "dst_ports": [53]},
              {"name": "lan", "action": "allow", "src": ["10.0.0.0/24"], "dst": ["10.0.0.2/32"]},
              {"name": "v6-udp", "action": "allow", "proto": "udp", "src": ["2001:db8::/32"]},
              {"name": "web", "action": "allow", "proto": "tcp", "dst_ports": ["80-443"]}]}}]}
            """#).interfaces[0].firewall!
        let p = try LoadedProgram.load(fw)
        let b = PacketBuilder(), tagged = PacketBuilder(vlans: [10, 20])
        let seeds: [[UInt8]] = [
            b.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .tcp(src: 1000, dst: 22)),
            b.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .udp(src: 1000, dst: 53), options: [1, 1, 1, 1]),
            b.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .udp(src: 1000, dst: 53), moreFragments: true),
            b.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .raw([1, 2, 3, 4, 5, 6, 7, 8]), proto: 17, fragmentOffset: 3),
            b.ipv4(src: "192.0.2.1", dst: "10.0.0.2", .tcp(src: 1000, dst: 443)),
            b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .udp(src: 1, dst: 2), extensions: [(0, PacketBuilder.options8), (60, PacketBuilder.options8)]),
            b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .tcp(src: 1, dst: 80), extensions: [(44, PacketBuilder.fragment(offset: 0, more: true))]),
            b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .icmp(type: 128)),
            // Chains one shorter than the parser walks, and as long (malformed).
            b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .udp(src: 1, dst: 2), extensions: Array(repeating: (60, PacketBuilder.options8), count: Int(DP_IPV6_EXT_MAX) - 1)),
            b.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .udp(src: 1, dst: 2), extensions: Array(repeating: (60, PacketBuilder.options8), count: Int(DP_IPV6_EXT_MAX))),
            tagged.ipv4(src: "10.0.0.1", dst: "10.0.0.2", .udp(src: 5, dst: 6)),
            tagged.ipv6(src: "2001:db8::1", dst: "2001:db8::2", .tcp(src: 1, dst: 443)),
        ]
        var rng = SeededRandom(seed: 0x7061_7273_6572)
        /// First fragments' verdicts, as dp_fw_frag remembers them (the run takes seconds,
        /// far less than the table's 30 s).
        var firstVerdicts: [[UInt32]: UInt32] = [:]
        var findings: [String] = [], counts = [UInt32: Int]()
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
            let expected: UInt32
            switch Self.parse(f) {
            case .malformed: expected = DP_VERDICT_DROP.rawValue
            case .notIP: expected = DP_VERDICT_PASS.rawValue
            case .ip(let key, let fragment):
                let action = referenceClassify(fw, key).action == .allow ? DP_VERDICT_PASS.rawValue : DP_VERDICT_DROP.rawValue
                if let fragment, !fragment.first {
                    expected = firstVerdicts[fragment.key] ?? action
                } else {
                    expected = action
                    if let fragment { firstVerdicts[fragment.key] = action }
                }
            }
            let verdict = try p.run(f).returnValue
            counts[verdict, default: 0] += 1
            if verdict != expected { findings.append("verdict \(verdict), reference \(expected) (\(Self.parse(f))): \(f.prefix(80))") }
        }
        print("parser fuzzing: \(counts[DP_VERDICT_PASS.rawValue] ?? 0) passed, \(counts[DP_VERDICT_DROP.rawValue] ?? 0) dropped, "
              + "\(counts[DP_VERDICT_ABORTED.rawValue] ?? 0) aborted, \(findings.count) findings")
        #expect(counts[DP_VERDICT_ABORTED.rawValue] == nil)
        #expect(findings.isEmpty, "\(findings.count) findings, e.g. \(findings.prefix(3))")
    }
}
