import ArgumentParser
import CLibBPF
import CXDPCtlABI
import Foundation
import XDPCtlBPF
import XDPCtlCore
import XDPCtlKit
import XDPCtlWorkloads

/// The program-cost table as text and as bench.json.
extension Bench {
    func render(_ rows: [Row]) -> String {
        var out = "profile  rules    path              nodes   trees  compile ms  ns/pkt  XDP_DROP  xdp-filter  ÷XDP_DROP  ÷xdp-filter  vs fewest rules\n"
        for r in rows {
            let first = fewest(r, rows)
            let xf = r.xdpFilter.map { String(format: "%10.1f", $0) } ?? "         -"
            let xfRatio = r.perFilter.map { String(format: "%10.2fx", $0) } ?? "          -"
            out += String(format: "%-7@ %6d   %-15@ %8d  %5d  %10.1f  %6.1f  %8.1f", r.profile as NSString, r.rules, r.path.rawValue as NSString, r.nodes, r.trees, r.compileMs, r.ns, r.floor)
                + "  \(xf)  " + String(format: "%8.2fx", r.perFloor) + "  \(xfRatio)  " + String(format: "%14.2fx", first) + "\n"
        }
        return out + "(medians of \(runs) runs, each going round all paths, a path's frames one at a time at each rule count in turn; each run averages \(frames) frames × \(self.repeat) repeats per path; hits spread over the list;\n"
            + " ratios are medians of per-run ratios: to the baselines measured beside our program, and to the same path's cost at the fewest rules in the same run)"
    }

    /// The median over runs of the row's cost against the same profile and path at the
    /// fewest rules, measured frame by frame in turn with it: a spell of the shared machine
    /// that slows our program more than XDP_DROP (~60 ns becoming ~80 while XDP_DROP goes
    /// from ~33 to ~36) then falls on both sides of the ratio.
    func fewest(_ r: Row, _ rows: [Row]) -> Double {
        let first = rows.first { $0.path == r.path && $0.profile == r.profile }!
        return Bench.median(zip(r.runs, first.runs).map(/))
    }

    func jsonText(_ rows: [Row], _ traceRows: [TraceRow], _ balancerRows: [BalancerRow], _ captureCost: CaptureCostRow?) -> String {
        func num(_ x: Double) -> JSONValue { .number(String(format: "%.2f", x)) }
        return JSONOutput.render(.obj(["runs": .int(runs), "repeat": .int(self.repeat), "frames": .int(frames),
            "rows": .array(rows.map { r in .obj([
                "profile": .string(r.profile), "rules": .int(r.rules), "path": .string(r.path.rawValue), "tree_nodes": .int(r.nodes), "trees": .int(r.trees),
                "compile_ms": num(r.compileMs), "ns_per_packet": num(r.ns), "xdp_drop_ns_per_packet": num(r.floor),
                "xdp_filter_ns_per_packet": r.xdpFilter.map(num) ?? .null,
                "ratio_xdp_drop": num(r.perFloor), "ratio_xdp_filter": r.perFilter.map(num) ?? .null,
                "ratio_fewest_rules": num(fewest(r, rows)), "runs_ns": .array(r.runs.map(num))]) }),
            "capture_check": captureCost.map { c in .obj(["rules": .int(c.rules), "path": .string(c.path), "ns_per_packet": num(Bench.median(c.with)),
                                                           "without_ns_per_packet": num(Bench.median(c.without)), "difference_ns": num(c.difference)]) } ?? .null,
            "trace_rows": .array(traceRows.map { r in .obj([
                "profile": .string(r.profile), "rules": .int(r.rules), "packets": .int(r.packets), "ns_per_packet": num(r.ns),
                "xdp_drop_ns_per_packet": num(r.floor), "ratio_xdp_drop": num(r.perFloor), "ratio_1000_rules": num(perBase(r, traceRows)),
                "runs_ns": .array(r.runs.map(num))]) }),
            "lb_rows": .array(balancerRows.map { r in .obj([
                "path": .string(r.path.rawValue), "ns_per_packet": num(r.ns), "xdp_drop_ns_per_packet": num(r.floor),
                "new_connections": .int(r.newConnections)]) })]), indent: "  ")
    }
}
