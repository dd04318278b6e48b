import ArgumentParser
import CLibBPF
import CXDPCtlABI
import Foundation
import XDPCtlBPF
import XDPCtlCore
import XDPCtlKit
import XDPCtlWorkloads

/// --compile-only: the table shapes, the walk work per path, patch and delete timings, without a kernel.
extension Bench {
    func printShapes() {
        for profile in profiles.compactMap(RuleProfile.init(rawValue:)) { for n in rules {
            let fw = profile.rules(count: n, seed: 42)
            let start = ContinuousClock.now
            do {
                let t = try FirewallCompiler().compile(fw, slots: sequentialSlots(fw))
                print("\(profile.rawValue) \(n) rules: \(t.boxCount) boxes, \(t.nodes.count) nodes, \(t.trees) trees, depth \(t.depth), largest leaf \(t.largestLeaf), compiled in \(ContinuousClock.now - start)")
                print("  per frame (trees / cut nodes / levels / rule checks): " + walkWork(fw, t))
                print("  patches of the middle rule: " + patchTimes(fw, t))
                print("  deletes of 40 rules spread over the list, each from this table: " + spreadDeletes(fw, t))
            } catch {
                print("\(profile.rawValue) \(n) rules: \(error) (after \(ContinuousClock.now - start))")
            }
        } }
    }

    /// The mean work of the benchmark's frames on each firewall path and of the trace, as
    /// the reference walk counts it.
    func walkWork(_ fw: Firewall, _ table: FirewallTable) -> String {
        (framesByPath(fw, table).map { ($0.0.rawValue, $0.1) } + [("trace", RuleProfile.trace(fw, count: tracePackets))]).map { path, keys in
            var work = FirewallTable.Work()
            for k in keys { _ = table.classify(k.words, counting: &work) }
            let n = Double(keys.count)
            return String(format: "%@ %.1f / %.1f / %.1f / %.1f", path, Double(work.trees) / n, Double(work.cuts) / n,
                          Double(work.levels) / n, Double(work.checks) / n)
        }.joined(separator: ", ")
    }

    /// How long the compiler takes to patch `table` for a changed action, a deleted rule
    /// and an inserted one in the middle of the list.
    func patchTimes(_ fw: Firewall, _ table: FirewallTable) -> String {
        let at = fw.rules.count / 2
        var flipped = fw.rules[at]
        flipped.action = flipped.action == .allow ? .drop : .allow
        var inserted = fw.rules[at]
        inserted.name = "inserted"
        var slots = sequentialSlots(fw)
        slots["inserted"] = UInt32(fw.rules.count + 1)
        let edits: [(String, Range<Int>, [FirewallRule])] = [("action", at..<at + 1, [flipped]), ("delete", at..<at + 1, []), ("insert", at..<at, [inserted])]
        return edits.map { name, range, rules in
            let start = ContinuousClock.now
            let patched = FirewallCompiler().patch(table, replacing: range, with: rules, slots: slots, defaultAction: fw.defaultAction)
            return "\(name) \(patched == nil ? "needs a full compile" : "in \(ContinuousClock.now - start)")"
        }.joined(separator: ", ")
    }

    /// How many of 40 single-rule deletes spread over the list patch, and how long the
    /// patches take: the deletes that need a full compile are the slow one-rule changes.
    func spreadDeletes(_ fw: Firewall, _ table: FirewallTable) -> String {
        let slots = sequentialSlots(fw)
        var times: [Duration] = []
        for k in 0..<40 {
            let at = (2 * k + 1) * fw.rules.count / 80
            let start = ContinuousClock.now
            if FirewallCompiler().patch(table, replacing: at..<at + 1, with: [], slots: slots, defaultAction: fw.defaultAction) != nil {
                times.append(ContinuousClock.now - start)
            }
        }
        times.sort()
        return "\(times.count) patch" + (times.isEmpty ? "" : " in \(times[0])–\(times[times.count - 1])")
    }
}
