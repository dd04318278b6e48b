import CXDPCtlABI
import Testing
import XDPCtlTestSupport
@testable import XDPCtlCore

@Suite("XDP program vs reference classifier", .serialized)
struct KernelDifferentialTests {
    /// Random rule sets, random packets built as real frames: the program's verdict and
    /// counted rule must be the reference's.
    @Test(arguments: [(rules: 8, seed: UInt64(11)), (rules: 120, seed: 12)])
    func randomPackets(rules: Int, seed: UInt64) throws {
        var gen = RuleSetGenerator(rng: SeededRandom(seed: seed))
        let fw = gen.firewall(rules: rules)
        let p = try LoadedProgram(fw)
        let b = PacketBuilder()
        for _ in 0..<1500 {
            let key = gen.packet(fw)
            let expected = referenceClassify(fw, key)
            let l4: PacketBuilder.L4
            switch key.proto {
            case 6 where key.dstPort != nil: l4 = .tcp(src: key.srcPort!, dst: key.dstPort!)
            case 17 where key.dstPort != nil: l4 = .udp(src: key.srcPort!, dst: key.dstPort!)
            case 1, 58: l4 = .icmp(type: key.proto == 1 ? 8 : 128)
            default: l4 = .raw([UInt8](repeating: 0x55, count: 20))
            }
            // Portless TCP/UDP keys are sent as non-first fragments, which carry no ports.
            let fragment = (key.proto == 6 || key.proto == 17) && key.dstPort == nil
            let frame = key.family == .ipv4
                ? b.ipv4(src: key.src.description, dst: key.dst.description, l4, proto: key.proto, fragmentOffset: fragment ? 2 : 0)
                : b.ipv6(src: key.src.description, dst: key.dst.description, l4, proto: key.proto,
                         extensions: fragment ? [(UInt8(44), PacketBuilder.fragment(offset: 2, more: false))] : [])
            let slot = expected.rule.map { UInt32($0 + 1) } ?? 0
            let before = try p.ruleStats.lookupPerCPU(slot, as: dp_rule_stats.self).reduce(0) { $0 + $1.packets }
            let verdict = try p.run(frame).returnValue
            let after = try p.ruleStats.lookupPerCPU(slot, as: dp_rule_stats.self).reduce(0) { $0 + $1.packets }
            let want = expected.action == .drop ? DP_VERDICT_DROP.rawValue : DP_VERDICT_PASS.rawValue
            guard verdict == want, after == before + 1 else {
                Issue.record("\(key): verdict \(verdict) (want \(want)), slot \(slot) counted \(after - before)")
                return
            }
        }
    }
}
