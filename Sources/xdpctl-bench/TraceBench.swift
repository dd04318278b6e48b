import Foundation
import XDPCtlBPF
import XDPCtlKit
import XDPCtlWorkloads

/// The many-flow rows: a rule set's trace (RuleProfile.trace: --trace-packets distinct
/// packets, hits spread over the whole list and misses), each packet run once, in turn,
/// through our program, with the trivial XDP_DROP beside it on the same packet. A
/// one-frame loop keeps the packet's path through the tables in cache; a trace does not.
extension Bench {
    struct TraceRow {
        var profile: String, rules: Int, packets: Int
        var ns: Double, floor: Double, perFloor: Double
        /// Mean ns per packet of each run, in run order.
        var runs: [Double]
    }

    /// Runs every target's trace `runs` times (after one warm-up pass), each target's
    /// whole trace in one go so that its tables, not another rule count's, fill the caches.
    func measureTraces(_ targets: [Target], floorFD: Int32, hold: (Int32, Int) throws -> OwnedDescriptor?) throws -> [TraceRow] {
        var ours = targets.map { _ in [Double]() }, floors = ours
        for run in -1..<runs {
            for profile in profiles {
                let members = targets.indices.filter { targets[$0].profile == profile }
                let links = try members.enumerated().map { slot, t in try hold(targets[t].programFD, 2 + slot) }
                try withExtendedLifetime(links) {
                    for t in members {
                        try targets[t].select(.allow) // the firewall alone: no rate limit
                        var sum = 0.0, floorSum = 0.0
                        for packet in targets[t].trace {
                            sum += Double(try TestRun.run(programFD: targets[t].programFD, packet: packet).duration)
                            floorSum += Double(try TestRun.run(programFD: floorFD, packet: packet).duration)
                        }
                        guard run >= 0 else { continue }
                        ours[t].append(sum / Double(targets[t].trace.count))
                        floors[t].append(floorSum / Double(targets[t].trace.count))
                    }
                }
            }
            if run >= 0 { FileOutput.standardError.write("trace run \(run + 1) of \(runs) measured\n") }
        }
        return targets.indices.map { t in
            TraceRow(profile: targets[t].profile, rules: targets[t].rules, packets: targets[t].trace.count,
                     ns: Bench.median(ours[t]), floor: Bench.median(floors[t]), perFloor: Bench.median(zip(ours[t], floors[t]).map(/)),
                     runs: ours[t])
        }
    }

    /// The row's cost against the same profile's at 1,000 rules (the target's base), or at
    /// the fewest when 1,000 was not measured; per run, the median.
    func perBase(_ r: TraceRow, _ rows: [TraceRow]) -> Double {
        let base = rows.first { $0.profile == r.profile && $0.rules == 1000 } ?? rows.first { $0.profile == r.profile }!
        return Bench.median(zip(r.runs, base.runs).map(/))
    }

    func renderTraces(_ rows: [TraceRow]) -> String {
        var out = "profile  rules   trace packets  ns/pkt  XDP_DROP     net  ÷XDP_DROP  vs 1,000 rules\n"
        for r in rows {
            out += String(format: "%-7@ %6d   %13d  %6.1f  %8.1f  %6.1f  %8.2fx  %13.2fx\n", r.profile as NSString, r.rules, r.packets,
                          r.ns, r.floor, r.ns - r.floor, r.perFloor, perBase(r, rows))
        }
        return out + "(many flows: each rule count's trace, every packet run once in turn (repeat 1) through our program and XDP_DROP; "
            + "medians of \(runs) runs of the mean; net = ns/pkt - XDP_DROP; ratios are medians of per-run ratios)"
    }
}
