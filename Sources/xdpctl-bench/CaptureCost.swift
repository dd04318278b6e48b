import CXDPCtlABI
import Foundation
import XDPCtlBPF
import XDPCtlKit

/// What capture's check costs a packet while no capture runs: xdp_ingress against the same
/// program built with capture compiled out (bpf/bench/xdp_ingress_nocapture.bpf.c),
/// loaded on the same pinned maps and table, timed in alternation on the same frames.
struct CaptureCostRow {
    var rules: Int
    var path: String
    /// Per run: ns per packet with the check, and without it.
    var with: [Double], without: [Double]

    var difference: Double { Bench.median(zip(with, without).map { $0 - $1 }) }
}

extension Bench {
    func measureCaptureCost(_ target: Target, dir: String) throws -> CaptureCostRow? {
        guard let (path, frames) = target.paths.first(where: { $0.0 == .miss }) ?? target.paths.first else { return nil }
        let variant = try Dataplane.ingressProgram(pinRoot: dir, table: target.inner, object: .xdpIngressNocapture)
        let variantFD = try variant.programFD(DP_PROG_XDP)
        try target.select(path)
        var row = CaptureCostRow(rules: target.rules, path: path.rawValue, with: [], without: [])
        for run in -1..<runs {
            var (a, b) = (0.0, 0.0)
            for frame in frames.prefix(self.frames) {
                a += try time(target.programFD, frame)
                b += try time(variantFD, frame)
            }
            guard run >= 0 else { continue }
            let n = Double(min(frames.count, self.frames))
            row.with.append(a / n)
            row.without.append(b / n)
        }
        return withExtendedLifetime(variant) { row }
    }

    func renderCaptureCost(_ r: CaptureCostRow) -> String {
        String(format: "capture's check while no capture runs (%d rules, %@ path): %.1f ns/pkt with it, %.1f without; difference %.2f ns (median of %d runs' differences)",
               r.rules, r.path as NSString, Bench.median(r.with), Bench.median(r.without), r.difference, runs)
    }
}
