import CXDPCtlABI
import Glibc
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore
@testable import XDPCtlKit

/// The tc egress program and the XDP program of one interface, sharing its maps, with
/// NAT rules installed; packets through BPF_PROG_TEST_RUN.
@Suite("Kernel: NAT rewrites and checksums", .serialized)
struct NATTests {
    static let b = PacketBuilder()
    static let rules = #"""
    {"version": 1, "interfaces": [{"name": "test", "nat": {
      "snat": [{"name": "out", "src": ["10.9.0.0/24"], "to_address": "203.0.113.1"},
               {"name": "out6", "src": ["fd09::/64"], "to_address": "2001:db8::1"}]}}]}
    """#

    /// An IPv4 UDP frame with its IP checksum filled and no UDP checksum (0).
    static func noUDPChecksum(_ frame: [UInt8]) -> [UInt8] {
        var f = Checksums.filled(frame)
        (f[14 + 20 + 6], f[14 + 20 + 7]) = (0, 0)
        return f
    }

    /// `body` with the XDP program loaded, the tc program beside it and the rules installed.
    func withNAT(_ body: (LoadedProgram, Int32) throws -> Void) throws {
        let p = try LoadedProgram.load()
        let tc = try BPFObject(.tcEgress, pinRoot: p.root.interface("test"))
        let nat = try #require(try ConfigDecoder.decode(Self.rules).interfaces[0].nat)
        try p.flip(try Dataplane.natTables(try NATCompiler.compile(nat, slots: ["out": 1, "out6": 2], addresses: [])))
        try body(p, try tc.programFD(DP_PROG_TC))
    }

    @Test("SNAT at tc keeps the source port and updates every checksum incrementally (TCP, UDP, IPv6); a UDP checksum of 0 stays 0; the reply is translated back at XDP")
    func snat() throws {
        try withNAT { p, tc in
            let cases: [([UInt8], [UInt8])] = [
                (Self.b.ipv4(src: "10.9.0.2", dst: "198.51.100.1", .tcp(src: 40000, dst: 443, flags: 0x02)),
                 Self.b.ipv4(src: "203.0.113.1", dst: "198.51.100.1", .tcp(src: 40000, dst: 443, flags: 0x02))),
                (Self.b.ipv4(src: "10.9.0.2", dst: "198.51.100.1", .udp(src: 5353, dst: 53)),
                 Self.b.ipv4(src: "203.0.113.1", dst: "198.51.100.1", .udp(src: 5353, dst: 53))),
                (Self.b.ipv6(src: "fd09::2", dst: "2001:db8:ff::1", .udp(src: 5353, dst: 53)),
                 Self.b.ipv6(src: "2001:db8::1", dst: "2001:db8:ff::1", .udp(src: 5353, dst: 53))),
                (Self.b.ipv6(src: "fd09::2", dst: "2001:db8:ff::1", .tcp(src: 40000, dst: 443, flags: 0x02)),
                 Self.b.ipv6(src: "2001:db8::1", dst: "2001:db8:ff::1", .tcp(src: 40000, dst: 443, flags: 0x02))),
            ]
            for (input, output) in cases {
                let r = try TestRun.run(programFD: tc, packet: Checksums.filled(input))
                #expect(r.returnValue == 0, "TC_ACT_OK")
                #expect(r.output == Checksums.filled(output), "\(output)")
            }
            // No checksum stays no checksum (IPv4 UDP), and the reply comes back through XDP.
            let bare = try TestRun.run(programFD: tc, packet: Self.noUDPChecksum(Self.b.ipv4(src: "10.9.0.3", dst: "198.51.100.1", .udp(src: 6000, dst: 53))))
            #expect(bare.output == Self.noUDPChecksum(Self.b.ipv4(src: "203.0.113.1", dst: "198.51.100.1", .udp(src: 6000, dst: 53))))
            let reply = try p.run(Self.noUDPChecksum(Self.b.ipv4(src: "198.51.100.1", dst: "203.0.113.1", .udp(src: 53, dst: 6000))))
            #expect(Array(reply.output.dropFirst(14)) == Array(Self.noUDPChecksum(Self.b.ipv4(src: "198.51.100.1", dst: "10.9.0.3", .udp(src: 53, dst: 6000))).dropFirst(14)),
                    "the reply's destination is the client's again (MACs aside: forwarding may set them)")
            // A source no rule takes leaves as it came.
            let other = Checksums.filled(Self.b.ipv4(src: "10.8.0.2", dst: "198.51.100.1", .udp(src: 5353, dst: 53)))
            #expect(try TestRun.run(programFD: tc, packet: other).output == other)
        }
    }

    @Test("the fast path: another interface's XDP translates the source of an established SNAT flow, counts it to the rule, and leaves it to the stack when the FIB would not send it out the rule's interface; an interface without NAT rules or DP_GEN_NAT_PEERS does nothing")
    func fastPath() throws {
        try withNAT { p, tc in
            let out = Checksums.filled(Self.b.ipv4(src: "10.9.0.2", dst: "198.51.100.1", .udp(src: 41000, dst: 53)))
            let translated = Checksums.filled(Self.b.ipv4(src: "203.0.113.1", dst: "198.51.100.1", .udp(src: 41000, dst: 53)))
            #expect(try TestRun.run(programFD: tc, packet: out).output == translated)
            // The connection belongs to another interface (99) than the test runs' (lo).
            let ct = try p.object.map(DP_MAP_CT_NEW)
            var key = dp_ct_key()
            (key.src, key.dst, key.sport, key.dport, key.proto, key.family) =
                (IPAddress("10.9.0.2")!.tuple, IPAddress("198.51.100.1")!.tuple, 41000, 53, 17, 4)
            var entry = try #require(try ct.lookup(key, as: dp_ct_entry.self))
            entry.ifindex = 99
            try ct.update(key, entry)
            let running = try #require(try p.generations.running())
            let counted = { () throws -> UInt64 in
                try p.object.map(DP_MAP_NAT_STATS).lookupPerCPU(UInt32(1), as: dp_nat_stats.self).reduce(0) { $0 + $1.packets }
            }

            // With NAT rules of its own or none, only the flag turns the fast path on.
            let before = try counted()
            for tables: [GenerationTable] in [[.snat, .dnat], []] {
                try p.generations.flip(slot: running.slot, tables: tables)
                let untouched = try p.run(out)
                #expect(untouched.returnValue == DP_VERDICT_PASS.rawValue && untouched.output == out, "no fast path without the flag")
            }
            try p.generations.flip(slot: running.slot, tables: [], flags: DP_GEN_NAT_PEERS.rawValue)
            let r = try p.run(out)
            #expect(r.returnValue == DP_VERDICT_PASS.rawValue, "the FIB does not send 198.51.100.1 out of interface 99: to the stack")
            #expect(r.output == translated, "translated, checksums right, TTL untouched")
            #expect(try counted() == before + 1, "counted to the rule")
        }
    }
}
