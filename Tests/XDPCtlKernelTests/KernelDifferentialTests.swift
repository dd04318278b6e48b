import CXDPCtlABI
import Testing
import XDPCtlWorkloads
@testable import XDPCtlCore

@Suite("XDP program vs reference classifier", .serialized)
struct KernelDifferentialTests {
    /// Random rule sets, random packets built as real frames: the program's verdict and
    /// counted rule must be the reference's.
    @Test(arguments: [(rules: 8, seed: UInt64(11)), (rules: 120, seed: 12)])
    func randomPackets(rules: Int, seed: UInt64) throws {
        var gen = RuleSetGenerator(rng: SeededRandom(seed: seed))
        let fw = gen.firewall(rules: rules)
        let p = try LoadedProgram.load(fw, capacity: FirewallTable.capacity(for: try FirewallCompiler().compile(fw, slots: sequentialSlots(fw)).nodes.count))
        let b = PacketBuilder()
        for _ in 0..<1500 {
            let key = gen.packet(fw)
            let expected = referenceClassify(fw, key)
            let frame = b.frame(key)
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
