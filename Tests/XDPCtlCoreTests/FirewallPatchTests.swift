import CXDPCtlABI
import Testing
import XDPCtlWorkloads
@testable import XDPCtlCore

@Suite("Firewall patches")
struct FirewallPatchTests {
    enum Edit: CaseIterable { case flip, delete, insert, replace, defaultAction }

    /// A random edit of `fw`: the rule positions it replaces and what replaces them.
    static func edit(_ fw: inout Firewall, _ gen: inout RuleSetGenerator, _ rng: inout SeededRandom, next: inout Int) -> Range<Int> {
        let at = Int(rng.next() % UInt64(max(fw.rules.count, 1)))
        let n = 1 + Int(rng.next() % 3)
        switch Edit.allCases[Int(rng.next() % UInt64(Edit.allCases.count))] {
        case .flip where !fw.rules.isEmpty:
            fw.rules[at].action = fw.rules[at].action == .allow ? .drop : .allow
            return at..<at + 1
        case .delete where fw.rules.count > 3:
            let end = min(at + n, fw.rules.count)
            fw.rules.removeSubrange(at..<end)
            return at..<at
        case .replace where !fw.rules.isEmpty:
            let end = min(at + n, fw.rules.count)
            var fresh = (0..<n).map { gen.rule(next + $0) }
            next += fresh.count
            if Bool.random(using: &rng), !fresh.isEmpty { fresh[0].name = fw.rules[at].name } // same name, new match
            fw.rules.replaceSubrange(at..<end, with: fresh)
            return at..<at + fresh.count
        case .defaultAction:
            fw.defaultAction = fw.defaultAction == .allow ? .drop : .allow
            return 0..<0
        default:
            let fresh = (0..<n).map { gen.rule(next + $0) }
            next += n
            fw.rules.insert(contentsOf: fresh, at: at)
            return at..<at + n
        }
    }

    /// Every patched table must decide as first match over the edited list, edit after edit.
    @Test("differential: 60 random edits patched in turn vs first-match reference", arguments: [
        (rules: 40, seed: UInt64(21)), (rules: 300, seed: 22), (rules: 1500, seed: 23), (rules: 40, seed: 31),
    ])
    func editsAgainstReference(rules: Int, seed: UInt64) throws {
        var gen = RuleSetGenerator(rng: SeededRandom(seed: seed))
        var rng = SeededRandom(seed: seed + 100)
        var fw = gen.firewall(rules: rules)
        var slots = InterfaceState.assignSlots(fw.rules.map(\.name), previous: [:]).slots
        let compiler = FirewallCompiler()
        var table = try compiler.compile(fw, slots: slots)
        var next = 1_000_000, patched = 0
        for _ in 0..<60 {
            let before = fw
            let changed = Self.edit(&fw, &gen, &rng, next: &next)
            // The positions the edit replaced in the list before it.
            let replaced = changed.lowerBound..<changed.lowerBound + (before.rules.count - fw.rules.count + changed.count)
            slots = InterfaceState.assignSlots(fw.rules.map(\.name), previous: slots).slots
            if let t = compiler.patch(table, replacing: replaced, with: Array(fw.rules[changed]), slots: slots, defaultAction: fw.defaultAction) {
                table = t
                patched += 1
            } else {
                table = try compiler.compile(fw, slots: slots)
            }
            var probes = (0..<400).map { _ in gen.packet(fw) }
            for r in fw.rules[max(0, changed.lowerBound - 2)..<min(fw.rules.count, changed.upperBound + 2)] {
                probes += (0..<20).map { _ in RuleProfile.packet(hitting: r, rng: &rng) }
            }
            // Where the replaced rules decided: the rules they hid there decide now.
            for r in before.rules[replaced] {
                probes += (0..<100).map { _ in RuleProfile.packet(hitting: r, rng: &rng) }
            }
            for key in probes {
                let expected = referenceClassify(fw, key)
                let got = table.nodes[table.classify(key.words)]
                let slot = expected.rule.map { slots[fw.rules[$0].name]! } ?? 0
                let action = UInt8(expected.action == .allow ? DP_FW_ALLOW.rawValue : DP_FW_DROP.rawValue)
                guard got.slot == slot, got.action == action else {
                    Issue.record("after \(patched) patches, \(key): table chose slot \(got.slot), reference \(expected.rule.map { fw.rules[$0].name } ?? "default")")
                    return
                }
            }
        }
        #expect(patched >= 50)
    }

    /// Deletes spread over ClassBench-shaped lists, one after another: each patches, and
    /// each patched table decides as first match over the shortened list where the deleted
    /// rule decided. Among them are ten planted rules that cover a later rule whole (its
    /// addresses, any protocol and port), so the compile left that rule out of every leaf
    /// of its tree: deleting the cover must bring it back. As compiled, the patch trees
    /// may hold only 64 boxes; `spilling`, the compile moves most rules on to later trees.
    @Test("30 deletes spread over 4,000 ClassBench-shaped rules all patch, and decide as the reference",
          arguments: RuleProfile.allCases, [false, true])
    func spreadDeletesPatch(profile: RuleProfile, spilling: Bool) throws {
        var fw = profile.rules(count: 4000, seed: 44)
        var deletes: [String] = []
        for k in 0..<10 {
            let covered = 200 + 380 * k
            var cover = fw.rules[covered]
            (cover.name, cover.proto, cover.srcPorts, cover.dstPorts) = ("cover-\(k)", nil, [], [])
            fw.rules.insert(cover, at: covered - 3)
            deletes += [cover.name, fw.rules[covered - 100].name, fw.rules[covered + 100].name]
        }
        let slots = sequentialSlots(fw)
        var compiler = FirewallCompiler()
        if spilling {
            compiler.maxCopies = 4 // most rules move on to later trees, after hiding rules in earlier ones
        } else {
            compiler.maxPatchBoxes = 64
        }
        var table = try compiler.compile(fw, slots: slots)
        #expect(spilling ? table.trees > 3 : table.trees == 3)
        var rng = SeededRandom(seed: 45)
        for name in deletes {
            let at = try #require(fw.rules.firstIndex { $0.name == name })
            let deleted = fw.rules.remove(at: at)
            table = try #require(compiler.patch(table, replacing: at..<at + 1, with: [], slots: slots, defaultAction: fw.defaultAction),
                                 "deleting \(name) needed a full compile")
            for _ in 0..<200 {
                let key = RuleProfile.packet(hitting: deleted, rng: &rng)
                let expected = referenceClassify(fw, key).rule.map { slots[fw.rules[$0].name]! } ?? 0
                let got = table.nodes[table.classify(key.words)].slot
                try #require(got == expected, "after deleting \(name), \(key): table chose slot \(got), reference \(expected)")
            }
        }
    }

    /// An action change keeps every box in its place: nothing dead, no patch tree.
    @Test func actionChangeRewritesInPlace() throws {
        let fw = RuleProfile.acl(count: 2000, seed: 5)
        let slots = sequentialSlots(fw)
        let table = try FirewallCompiler().compile(fw, slots: slots)
        var rule = fw.rules[1000]
        rule.action = rule.action == .allow ? .drop : .allow
        let patched = try #require(FirewallCompiler().patch(table, replacing: 1000..<1001, with: [rule], slots: slots, defaultAction: fw.defaultAction))
        #expect(patched.directory.dead == 0)
        #expect(patched.trees == table.trees)
        #expect(patched.nodes.count == table.nodes.count)
    }

    /// Deleting more boxes than a table may carry dead asks for a full compile.
    @Test func largeDeletionsNeedAFullCompile() throws {
        let fw = RuleProfile.acl(count: 500, seed: 6)
        let table = try FirewallCompiler().compile(fw, slots: sequentialSlots(fw))
        let patched = FirewallCompiler().patch(table, replacing: 100..<300, with: [], slots: sequentialSlots(fw), defaultAction: fw.defaultAction)
        #expect(patched == nil)
    }
}
