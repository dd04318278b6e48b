import ArgumentParser
import CLibBPF
import CXDPCtlABI
import Foundation
import XDPCtlBPF
import XDPCtlCore
import XDPCtlTestSupport

/// Program cost per packet under BPF_PROG_TEST_RUN, for the firewall at several rule
/// counts, against a trivial XDP_DROP program measured on the same frames in the same run.
/// Reports medians of repeated runs and ratios, never a lone absolute time.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xdpctl-bench",
        abstract: "Measure the XDP program's cost per packet against baselines (run as root; scripts/bench.sh).")

    @Option(parsing: .upToNextOption, help: "Rule counts to measure.") var rules: [Int] = [10, 1000, 10000]
    @Option(help: "Repetitions; the median is reported.") var runs = 5
    @Option(help: "BPF_PROG_TEST_RUN repeat count per frame.") var `repeat` = 2000
    @Option(help: "Frames per measurement (half hit rules spread over the list, half miss).") var frames = 64
    @Option(help: "Also write the results as JSON to this file.") var json: String?

    struct Row { var name: String; var rules: Int; var nodes: Int; var trees: Int; var compileMs: Double; var ns: Double; var baseline: Double }

    func validate() throws {
        guard rules.allSatisfy({ $0 >= 1 && $0 <= 200_000 }) else { throw ValidationError("--rules takes counts from 1 to 200000") }
        guard runs >= 1, self.repeat >= 1, frames >= 2 else { throw ValidationError("--runs and --repeat must be at least 1, --frames at least 2") }
    }

    func run() throws {
        let root = "/sys/fs/bpf/xdpctl-bench-\(getpid())"
        mkdir(root, 0o700)
        defer { try? PinRoot(root).removeTree(root) }
        let floor = try BPFObject(.xdpDrop, pinRoot: nil)
        let floorFD = try floor.programFD("xdp_drop")

        var rows: [Row] = []
        for n in rules {
            let fw = RuleProfile.acl(count: n, seed: 42)
            let clock = ContinuousClock()
            let start = clock.now
            let table = try FirewallCompiler().compile(fw, slots: sequentialSlots(fw))
            let compile = clock.now - start
            // A program instance sized for the table, as apply loads one.
            let capacity = FirewallTable.capacity(for: table.nodes.count)
            try? PinRoot(root).removeTree(root)
            mkdir(root, 0o700)
            let inner = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_fw_tree", keySize: 4,
                                          valueSize: MemoryLayout<dp_fw_node>.size, maxEntries: capacity)
            try inner.fill(table.nodes)
            let program = try BPFObject(.xdpIngress, pinRoot: root, innerMaps: [DP_MAP_FW: inner])
            let fwMap = try program.map(DP_MAP_FW), progFD = try program.programFD(DP_PROG_XDP)
            try fwMap.update(UInt32(0), inner.fd.raw)

            var rng = SeededRandom(seed: UInt64(n))
            let builder = PacketBuilder()
            var keys: [PacketKey] = []
            for i in 0..<frames {
                if i % 2 == 0 {
                    // Hits spread across the whole list.
                    let rule = fw.rules[(i / 2) * fw.rules.count / max(1, frames / 2)]
                    keys.append(RuleProfile.packet(hitting: rule, rng: &rng))
                } else {
                    keys.append(PacketKey(src: IPAddress("192.0.2.\(i)")!, dst: IPAddress("198.51.100.\(i)")!, proto: 17, srcPort: 5000, dstPort: UInt16(30000 + i)))
                }
            }
            let packets = keys.map(builder.frame)
            var ours: [Double] = [], base: [Double] = []
            for _ in 0..<runs {
                ours.append(try mean(progFD, packets))
                base.append(try mean(floorFD, packets))
            }
            rows.append(Row(name: "firewall acl", rules: n, nodes: table.nodes.count, trees: table.trees,
                            compileMs: Double(compile.components.attoseconds) / 1e15 + Double(compile.components.seconds) * 1000,
                            ns: median(ours), baseline: median(base)))
        }
        print(render(rows))
        if let json { try jsonText(rows).write(toFile: json, atomically: true, encoding: .utf8) }
    }

    func mean(_ fd: Int32, _ packets: [[UInt8]]) throws -> Double {
        var total = 0.0
        for p in packets { total += Double(try TestRun.run(programFD: fd, packet: p, repeat: self.repeat).duration) }
        return total / Double(packets.count)
    }

    func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }

    func render(_ rows: [Row]) -> String {
        var out = "path           rules   tree nodes  trees  compile ms   ns/pkt  XDP_DROP ns/pkt  ratio  vs 10 rules\n"
        let first = rows.first?.ns ?? 1
        for r in rows {
            out += String(format: "%-13@ %6d  %11d  %5d  %10.1f  %7.1f  %15.1f  %5.2fx  %9.2fx\n",
                          r.name as NSString, r.rules, r.nodes, r.trees, r.compileMs, r.ns, r.baseline, r.ns / r.baseline, r.ns / first)
        }
        return out + "(medians of \(runs) runs; each run averages \(frames) frames × \(self.repeat) repeats; half the frames hit rules spread over the list, half miss)"
    }

    func jsonText(_ rows: [Row]) -> String {
        JSONOutput.render(.obj(["runs": .int(runs), "repeat": .int(self.repeat), "frames": .int(frames),
            "rows": .array(rows.map { r in .obj([
                "path": .string(r.name), "rules": .int(r.rules), "tree_nodes": .int(r.nodes), "trees": .int(r.trees),
                "compile_ms": .number(String(format: "%.1f", r.compileMs)), "ns_per_packet": .number(String(format: "%.2f", r.ns)),
                "xdp_drop_ns_per_packet": .number(String(format: "%.2f", r.baseline)),
                "ratio_to_xdp_drop": .number(String(format: "%.3f", r.ns / r.baseline))]) })]), indent: "  ")
    }
}
