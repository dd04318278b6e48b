import CXDPCtlABI
import Foundation
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore
@testable import XDPCtlKit

@Suite("Apply: rule edits patch the running table", .serialized)
struct PatchApplyTests {
    /// Runs `body` with a data plane of its own pin root, in a namespace with interface xlba.
    static func withDataplane(_ tag: String, _ body: @escaping (Dataplane) throws -> Void) throws {
        let ns = try FIBNamespace()
        defer { ns.close() }
        try ns.run {
            let dp = try Dataplane(pinRoot: "/sys/fs/bpf/\(tag)-\(getpid())", netns: nil)
            defer { _ = try? dp.down() }
            try body(dp)
        }
    }

    /// Edits inside the rule list are patched, not compiled, and the attached program
    /// then decides every probe as first match over the edited list, counted in the rule's slot.
    @Test func editsArePatchedAndDecideLikeTheReference() throws {
        try Self.withDataplane("xktpatch") { dp in
            var fw = RuleProfile.acl(count: 3000, seed: 9)
            // A rule the first compile builds into its trees, hiding a later one it contains.
            func narrow(_ r: FirewallRule) -> Bool { r.src.count == 1 && r.dst.count == 1 && r.src[0].length >= 24 && r.dst[0].length >= 24 }
            let hidden = fw.rules[2500...].first(where: narrow)!
            let broad = FirewallRule(name: "broad", action: hidden.action == .allow ? .drop : .allow, src: hidden.src, dst: hidden.dst,
                                     proto: hidden.proto, srcPorts: [], dstPorts: [])
            fw.rules.insert(broad, at: 100)
            var rng = SeededRandom(seed: 10)
            /// Map ids of the running firewall table and of the spare one.
            func tables() throws -> (running: UInt32, spare: UInt32?) {
                let running = try #require(try GenerationMaps(pinDirectory: dp.root.interface("xlba")).runningTables()[.firewall])
                return (try running.info().id, try? BPFMap.open(pinned: dp.root.spareTable(of: "xlba")).info().id)
            }
            func apply() throws -> ApplyResult {
                let before = try? tables()
                let result = try dp.apply(RuleProfile.config(fw, interface: "xlba"))
                let after = try tables()
                // A swap retires the running table to be the spare, after filling the spare it found.
                if let before, result.changed {
                    #expect(after.spare == before.running)
                    #expect(before.spare == nil || after.running == before.spare)
                }
                return result
            }
            func check(near rules: [Int]) throws {
                let slots = try #require(try dp.state()?.interfaces.first?.slots.byName)
                let program = try XDPLink.program(pinPath: dp.root.link("xlba"))
                let ruleStats = try BPFMap.open(pinned: dp.root.map(DP_MAP_RULE_STATS, of: "xlba"))
                let b = PacketBuilder()
                let probes = rules.flatMap { r in (0..<20).map { _ in fw.rules[min(r, fw.rules.count - 1)] } }
                    + (0..<200).map { _ in fw.rules[Int(rng.next() % UInt64(fw.rules.count))] }
                for rule in probes {
                    let key = RuleProfile.packet(hitting: rule, rng: &rng)
                    let expected = referenceClassify(fw, key)
                    let slot = expected.rule.map { slots[fw.rules[$0].name]! } ?? 0
                    let before = try ruleStats.lookupPerCPU(slot, as: dp_rule_stats.self).reduce(0) { $0 + $1.packets }
                    let verdict = try TestRun.run(programFD: program.raw, packet: b.frame(key)).returnValue
                    let after = try ruleStats.lookupPerCPU(slot, as: dp_rule_stats.self).reduce(0) { $0 + $1.packets }
                    let want = expected.action == .drop ? DP_VERDICT_DROP.rawValue : DP_VERDICT_PASS.rawValue
                    guard verdict == want, after == before + 1 else {
                        Issue.record("\(key): verdict \(verdict) (want \(want)), slot \(slot) counted \(after - before)")
                        return
                    }
                }
            }
            #expect(try apply().patched == false)
            try check(near: [])

            fw.rules[1500].action = fw.rules[1500].action == .allow ? .drop : .allow
            var result = try apply()
            #expect(result.patched && result.changes == ["~ xlba: rule \"\(fw.rules[1500].name)\" changed"])
            try check(near: [1500])

            fw.rules.remove(at: 10)
            #expect(try apply().patched)
            try check(near: [9, 10])

            // A broad rule early in the list: it wins over many later ones.
            fw.rules.insert(FirewallRule(name: "added", action: .drop, src: [try IPPrefix("10.0.0.0/9")], dst: [],
                                         proto: .tcp, srcPorts: [], dstPorts: []), at: 200)
            #expect(try apply().patched)
            try check(near: [200, 201, 1000, 2500])

            fw.rules[700].dst = [try IPPrefix("10.77.0.0/16")]
            fw.rules[701].name = "renamed"
            result = try apply()
            #expect(result.patched && result.changes.count == 3)
            try check(near: [700, 701])

            fw.rules.remove(at: 200)
            #expect(try apply().patched)
            try check(near: [199, 200])
            // Deleting the compiled rule uncovers the one it hid.
            try check(near: [fw.rules.firstIndex { $0.name == hidden.name }!])
            fw.rules.removeAll { $0.name == "broad" }
            #expect(try apply().patched)
            try check(near: [100, fw.rules.firstIndex { $0.name == hidden.name }!])
            let generation = try #require(try dp.state()?.generation)

            // A rule that is not valid fails as in a full apply, naming its place, and changes nothing.
            let bad = RuleProfile.config(fw, interface: "xlba").replacingOccurrences(of: "\"name\":\"acl-2000\"", with: "\"name\":\"acl-2000\",\"src_ports\":[70000]")
            #expect(throws: DataplaneError.self) { try dp.apply(bad) }
            let duplicate = RuleProfile.config(fw, interface: "xlba").replacingOccurrences(of: "\"name\":\"acl-2000\"", with: "\"name\":\"acl-2001\"")
            do {
                _ = try dp.apply(duplicate)
                Issue.record("a duplicate rule name was applied")
            } catch {
                #expect("\(error)".contains("duplicate rule name \"acl-2001\""))
            }
            #expect(try dp.state()?.generation == generation)
            try check(near: [2000])

            // A full compile of the same file folds the patch trees back into the trees.
            #expect(try dp.state()!.interfaces[0].firewallPatchTrees > 0)
            result = try dp.apply(RuleProfile.config(fw, interface: "xlba"), patching: false)
            #expect(result.changed && !result.patched && result.changes == ["~ xlba: firewall compiled afresh (patched rules merged into its trees)"])
            #expect(try dp.state()!.interfaces[0].firewallPatchTrees == 0)
            try check(near: [])

            // A change outside the rule list takes a full apply.
            fw.defaultAction = fw.defaultAction == .allow ? .drop : .allow
            #expect(try apply().patched == false)
            try check(near: [])
        }
    }

    /// A new interface's program loads while the rules compile, for a guessed table size:
    /// a bigger table loads it again, and an apply that fails after the load leaves no pins.
    @Test func programsLoadedAheadAreUsedOrDropped() throws {
        try Self.withDataplane("xktpre") { dp in
            // Eight port ranges per rule: more nodes per rule than the guess of six.
            let rules = (0..<200).map { i in
                FirewallRule(name: "r\(i)", action: i % 2 == 0 ? .drop : .allow, src: [try! IPPrefix("10.\(i / 250).\(i % 250).0/24")], dst: [],
                             proto: .tcp, srcPorts: [], dstPorts: (0..<8).map { PortRange(UInt16(1000 * $0 + i), UInt16(1000 * $0 + i + 500)) })
            }
            let fw = Firewall(defaultAction: .allow, rules: rules)
            let nodes = try FirewallCompiler().compile(fw, slots: sequentialSlots(fw)).nodes.count
            #expect(FirewallTable.capacity(for: nodes) > FirewallTable.capacity(for: 6 * (rules.count + 1)))
            #expect(try dp.apply(RuleProfile.config(fw, interface: "xlba")).changed)
            #expect(try dp.state()?.interfaces[0].firewallCapacity == FirewallTable.capacity(for: nodes))
            let program = try XDPLink.program(pinPath: dp.root.link("xlba"))
            let hit = PacketKey(src: IPAddress("10.0.7.9")!, dst: IPAddress("10.9.9.9")!, proto: 6, srcPort: 40000, dstPort: 1010)
            #expect(try TestRun.run(programFD: program.raw, packet: PacketBuilder().frame(hit)).returnValue == DP_VERDICT_PASS.rawValue) // r7 allows
            _ = try dp.down()

            // 65 rate limits do not fit (64 entries): the apply fails after the program loaded.
            let limits = (0..<65).map { #"{"name":"l\#($0)","per":"rule","proto":"udp","dst_ports":[\#($0 + 1)],"packets_per_second":100}"# }
            let text = #"{"version":1,"interfaces":[{"name":"xlba","rate_limits":["# + limits.joined(separator: ",") + "]}]}"
            do {
                _ = try dp.apply(text)
                Issue.record("65 rate limits were applied")
            } catch {
                #expect("\(error)".contains("at most 64 fit"))
            }
            #expect(access(dp.root.interface("xlba"), F_OK) != 0)
            #expect(try dp.state() == nil)
        }
    }
}
