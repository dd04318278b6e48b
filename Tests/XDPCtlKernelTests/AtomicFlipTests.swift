import CXDPCtlABI
import Foundation
import Synchronization
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore
@testable import XDPCtlKit

@Suite("Atomic table swaps under traffic", .serialized)
struct AtomicFlipTests {
    /// Flips `maps` between two generations staged in slots 0 and 1 (holding `kinds[0]`
    /// and `kinds[1]`) 1,000 times on another thread while `probe` runs packets (at least
    /// 1,000 of them). `probe` says which generation a packet showed (0 or 1), or nil for
    /// neither; returns the tallies.
    static func underFlips(_ maps: GenerationMaps, _ kinds: [[GenerationTable]], probe: () throws -> Int?) throws -> (seen: [Int], mismatches: Int, runs: Int) {
        let flipsWanted = 1000
        let flips = Atomic<Int>(0)
        let flipper = Thread {
            for i in 1...flipsWanted {
                try? maps.flip(slot: UInt32(i % 2), tables: kinds[i % 2])
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
    /// (slot 1), B passes it under rule "y" (slot 2). While one thread flips between
    /// them, another runs the packet; every run must show A's verdict and counter effect
    /// or B's, never a mix and never anything else.
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
        for (slot, fw) in [a, b].enumerated() {
            try p.generations.stage([.firewall: try LoadedProgram.table(p.capacity, FirewallCompiler().compile(fw, slots: slots))], slot: UInt32(slot))
        }
        try p.generations.flip(slot: 0, tables: [.firewall])
        let slotX = slots["x"]!, slotY = slots["y"]!
        let frame = PacketBuilder().ipv4(src: "192.0.2.1", dst: "198.51.100.1", .udp(src: 4000, dst: port))

        func hits(_ slot: UInt32) throws -> UInt64 { try p.ruleStats.lookupPerCPU(slot, as: dp_rule_stats.self).reduce(0) { $0 + $1.packets } }
        let (seen, mismatches, runs) = try Self.underFlips(p.generations, [[.firewall], [.firewall]]) {
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

    /// One flip changes the firewall, the rate limits and the load balancers together.
    /// A has no firewall, an exhausted limit on UDP/9001 (1 byte/s: after the first
    /// frame, the next fits in about a minute) and the VIP 10.50.100.1:80; B has a
    /// firewall dropping UDP/9001, no limits and no balancers. Under flips, a UDP/9001
    /// packet must drop as A's (rate_limit) or as B's (firewall), and a SYN to the VIP
    /// must be balanced as A's (rewritten, counted) or passed untouched as B's; anything
    /// else met one generation's table with the other's.
    @Test func firewallLimitsAndBalancersFlipTogether() throws {
        let port: UInt16 = 9001
        let x = FirewallRule(name: "x", action: .drop, proto: .udp, dstPorts: [PortRange(port, port)])
        let limit = RateLimit(name: "cap", proto: .udp, src: [], dst: [], srcPorts: [], dstPorts: [PortRange(port, port)], tcpFlags: [],
                              per: .rule, packetsPerSecond: nil, burstPackets: nil, bytesPerSecond: 1, burstBytes: 100)
        let p = try LoadedProgram.load()
        let (_, balancers) = try Dataplane.installBalancers([LoadBalancerTests.web], into: p.object)
        var a = balancers
        a[.rateLimits] = try Dataplane.limitTable(try RateLimitCompiler.compile([limit], slots: ["cap": 1]))
        let b: [GenerationTable: BPFMap] = [.firewall: try LoadedProgram.table(p.capacity, FirewallCompiler().compile(Firewall(defaultAction: .allow, rules: [x]), slots: ["x": 1]))]
        try p.generations.stage(a, slot: 0)
        try p.generations.stage(b, slot: 1)
        try p.generations.flip(slot: 0, tables: a.keys)
        let udp = PacketBuilder().ipv4(src: "192.0.2.1", dst: "198.51.100.1", .udp(src: 4000, dst: port))
        #expect(try p.run(udp).returnValue == DP_VERDICT_PASS.rawValue, "the burst of one")
        let syn = PacketBuilder().ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: 40000, dst: 80, flags: 0x02))

        func reasons() throws -> [UInt64] { try p.counters(slots: 0).reasons }
        let rl = Int(DP_REASON_RATE_LIMIT.rawValue), fwReason = Int(DP_REASON_FIREWALL.rawValue)
        var probes = 0
        let (seen, mismatches, runs) = try Self.underFlips(p.generations, [Array(a.keys), Array(b.keys)]) {
            probes += 1
            if probes % 2 == 0 {
                let before = try p.lbCounters(DP_MAP_LB_VSTATS, 1).packets
                let out = try p.run(syn)
                let balanced = try p.lbCounters(DP_MAP_LB_VSTATS, 1).packets - before
                if balanced == 1 && out.output != syn { return 0 }
                if balanced == 0 && out.output == syn && out.returnValue == DP_VERDICT_PASS.rawValue { return 1 }
                return nil
            }
            let before = try reasons()
            let verdict = try p.run(udp).returnValue
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
