import CXDPCtlABI
import Foundation
import Synchronization
import Testing
import XDPCtlTestSupport
@testable import XDPCtlBPF
@testable import XDPCtlCore
@testable import XDPCtlKit

@Suite("Atomic table swaps under traffic", .serialized)
struct AtomicFlipTests {
    /// Swaps slot 0 of `outer` between two tables 1,000 times on another thread while
    /// `probe` runs packets (at least 1,000 of them). `probe` says which generation a
    /// packet showed (0 or 1), or nil for neither; returns the tallies.
    static func underFlips(_ outer: BPFMap, _ tables: [BPFMap], probe: () throws -> Int?) throws -> (seen: [Int], mismatches: Int, runs: Int) {
        let flipsWanted = 1000
        let flips = Atomic<Int>(0)
        let flipper = Thread {
            for i in 1...flipsWanted {
                try? outer.update(UInt32(0), tables[i % 2].fd.raw)
                flips.store(i, ordering: .releasing)
            }
        }
        flipper.start()
        var seen = [0, 0], mismatches = 0, runs = 0
        while flips.load(ordering: .acquiring) < flipsWanted || runs < 1000 {
            if let generation = try probe() { seen[generation] += 1 } else { mismatches += 1 }
            runs += 1
        }
        return (seen, mismatches, runs)
    }

    /// Two generations decide the same packet differently: A drops it under rule "x"
    /// (slot 1), B passes it under rule "y" (slot 2). While one thread swaps the table
    /// slot back and forth, another runs the packet; every run must show A's verdict and
    /// counter effect or B's, never a mix and never anything else.
    @Test func flipsUnderTraffic() throws {
        let port: UInt16 = 9000
        func firewall(_ dropFirst: Bool) -> Firewall {
            let x = FirewallRule(name: "x", action: .drop, proto: .udp, dstPorts: [PortRange(port, port)])
            let y = FirewallRule(name: "y", action: .allow, proto: .udp, dstPorts: [PortRange(port, port)])
            // Padding rules make the tables real trees, not single leaves.
            let pad = (0..<300).map { FirewallRule(name: "p\($0)", action: .drop, dst: [try! IPPrefix("10.\($0 % 250).\($0 / 250).0/24")]) }
            return Firewall(defaultAction: .allow, rules: pad + (dropFirst ? [x, y] : [y, x]))
        }
        let a = firewall(true), b = firewall(false)
        let slots = Dictionary(uniqueKeysWithValues: (a.rules.map(\.name)).enumerated().map { ($1, UInt32($0 + 1)) })
        let p = try LoadedProgram.load()
        let tables = try [a, b].map { fw in try LoadedProgram.table(p.capacity, FirewallCompiler().compile(fw, slots: slots)) }
        try p.firewall.update(UInt32(0), tables[0].fd.raw)
        let slotX = slots["x"]!, slotY = slots["y"]!
        let frame = PacketBuilder().ipv4(src: "192.0.2.1", dst: "198.51.100.1", .udp(src: 4000, dst: port))

        func hits(_ slot: UInt32) throws -> UInt64 { try p.ruleStats.lookupPerCPU(slot, as: dp_rule_stats.self).reduce(0) { $0 + $1.packets } }
        let (seen, mismatches, runs) = try Self.underFlips(p.firewall, tables) {
            let (x0, y0) = (try hits(slotX), try hits(slotY))
            let verdict = try p.run(frame).returnValue
            let (dx, dy) = (try hits(slotX) - x0, try hits(slotY) - y0)
            if verdict == DP_VERDICT_DROP.rawValue && dx == 1 && dy == 0 { return 0 }
            if verdict == DP_VERDICT_PASS.rawValue && dx == 0 && dy == 1 { return 1 }
            return nil
        }
        #expect(mismatches == 0, "\(mismatches) of \(runs) packets matched neither generation")
        #expect(seen[0] > 0 && seen[1] > 0, "both generations were seen (A \(seen[0]), B \(seen[1]))")
        let counters = try p.counters(slots: 1)
        #expect(counters.verdicts[Int(DP_VERDICT_ABORTED.rawValue)] == 0 && counters.reasons[Int(DP_REASON_MALFORMED.rawValue)] == 0)
    }

    /// A swap changes the firewall and the rate limits together. A passes the port
    /// through the firewall to an exhausted limit held in dp_rl slot 1 (1 byte/s: after
    /// the first frame, the next fits in about a minute); B drops it in the
    /// firewall and names slot 0, which holds no limits. Only the firewall table is
    /// swapped, as apply does: a packet must drop as A (rate_limit) or as B (firewall);
    /// one that passed would have met A's firewall with B's limits, or read the wrong slot.
    @Test func firewallAndLimitsSwapTogether() throws {
        let port: UInt16 = 9001
        let x = FirewallRule(name: "x", action: .drop, proto: .udp, dstPorts: [PortRange(port, port)])
        let limit = RateLimit(name: "cap", proto: .udp, src: [], dst: [], srcPorts: [], dstPorts: [PortRange(port, port)], tcpFlags: [],
                              per: .rule, packetsPerSecond: nil, burstPackets: nil, bytesPerSecond: 1, burstBytes: 100)
        let p = try LoadedProgram.load()
        let limits = try Dataplane.limitTable(try RateLimitCompiler.compile([limit], slots: ["cap": 1]))
        try p.object.map(DP_MAP_RL).update(UInt32(1), limits.fd.raw)
        let tables = try [(Firewall(defaultAction: .allow, rules: []), UInt32(1)), (Firewall(defaultAction: .allow, rules: [x]), UInt32(0))].map { fw, slot in
            var table = try FirewallCompiler().compile(fw, slots: ["x": 1])
            table.nodes[0].base = slot
            return try LoadedProgram.table(p.capacity, table)
        }
        try p.firewall.update(UInt32(0), tables[0].fd.raw)
        let frame = PacketBuilder().ipv4(src: "192.0.2.1", dst: "198.51.100.1", .udp(src: 4000, dst: port))
        #expect(try p.run(frame).returnValue == DP_VERDICT_PASS.rawValue, "the burst of one")

        func reasons() throws -> [UInt64] { try p.counters(slots: 0).reasons }
        let rl = Int(DP_REASON_RATE_LIMIT.rawValue), fwReason = Int(DP_REASON_FIREWALL.rawValue)
        let (seen, mismatches, runs) = try Self.underFlips(p.firewall, tables) {
            let before = try reasons()
            let verdict = try p.run(frame).returnValue
            let after = try reasons()
            guard verdict == DP_VERDICT_DROP.rawValue else { return nil }
            if after[rl] - before[rl] == 1 && after[fwReason] == before[fwReason] { return 0 }
            if after[fwReason] - before[fwReason] == 1 && after[rl] == before[rl] { return 1 }
            return nil
        }
        #expect(mismatches == 0, "\(mismatches) of \(runs) packets matched neither generation")
        #expect(seen[0] > 0 && seen[1] > 0, "both generations were seen (A \(seen[0]), B \(seen[1]))")
    }
}
