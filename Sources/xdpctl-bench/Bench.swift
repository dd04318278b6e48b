import ArgumentParser
import CLibBPF
import CXDPCtlABI
import Foundation
import XDPCtlBPF
import XDPCtlCore
import XDPCtlKit
import XDPCtlWorkloads

/// Program cost per packet under BPF_PROG_TEST_RUN, per firewall path and rule count,
/// against baselines measured on the same frames in the same run: a trivial XDP_DROP
/// program and xdp-filter's all-features program with matching rules. Reports medians of
/// repeated runs and ratios, never a lone absolute time.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xdpctl-bench",
        abstract: "Measure the XDP program's cost per packet against baselines (run as root; scripts/bench.sh).")

    @Option(parsing: .upToNextOption, help: "Rule counts to measure.") var rules: [Int] = [10, 1000, 10000, 100000]
    @Option(parsing: .upToNextOption, help: "Rule-set profiles: acl, fw, ipc (ClassBench-shaped).") var profiles: [String] = ["acl"]
    @Option(help: "Runs, each going round every path; the median is reported.") var runs = 9
    @Option(help: "BPF_PROG_TEST_RUN repeat count per frame.") var `repeat` = 2000
    @Option(help: "Frames per path and measurement.") var frames = 32
    @Option(help: "xdp-filter's all-features object (skipped when absent).")
    var xdpFilter = "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_all.o"
    @Option(help: "Also write the results as JSON to this file.") var json: String?
    @Option(help: ArgumentHelp("Print an xdpctl config with this many ACL-shaped rules for --interface, and exit.", valueName: "RULES"))
    var emitConfig: Int?
    @Option(help: "With --emit-config: the interface the config names.") var interface = "eth0"
    @Option(help: "With --emit-config: flip the action of this rule (a one-rule change).") var flipRule: Int?
    @Option(help: "With --emit-config: delete this rule.") var deleteRule: Int?
    @Option(help: "With --emit-config: insert a new rule here (a copy of the rule there, renamed, with its action flipped).") var insertRule: Int?
    @Option(help: "Network namespace to run in (from `ip netns add`).") var netns: String?
    @Option(help: ArgumentHelp("Spare interfaces that support native XDP (veths), 2 + one per rule count: XDP_DROP, xdp-filter and our program at each rule count stay attached to one while they are measured, so PROG_TEST_RUN does not change the kernel's XDP dispatcher, and wait for an RCU grace period, on every call.", valueName: "IF,IF,IF,..."))
    var holdOn: String?
    @Flag(help: "Only compile each rule set and print its table's shape (no root needed).") var compileOnly = false
    @Flag(help: "Also measure the load balancer's paths (needs the namespace scripts/bench.sh sets up).") var balancer = false
    @Option(help: ArgumentHelp("Traffic generator: send up to this many frames out of --interface through an AF_PACKET socket (sendmmsg, qdisc bypassed): no live frames; a veth peer gets socket buffers (--relay-to turns them into XDP frames). The frames are built first and go to MAC 02:00:00:00:00:01. Prints JSON (frames, seconds, rate_pps) and exits.", valueName: "FRAMES"))
    var send: Int?
    @Option(help: ArgumentHelp("With --send: pace to this many frames per second (0: as fast as the socket takes them).", valueName: "PPS")) var rate = 0
    @Option(help: "With --send: stop after this many seconds even if frames remain.") var seconds = 30.0
    @Option(help: "With --send: UDP frames of one flow, as SRC,DST,DPORT.") var flow = "10.201.0.1,10.201.0.2,9"
    @Option(help: "With --send and --flow: rotate the IPv4 source over this many addresses from SRC up.") var sources = 1
    @Flag(help: "With --sources: each source sends from a port of its own (1024 up) instead of all from 40000.") var sourcePorts = false
    @Option(help: ArgumentHelp("With --send: the many-flow trace of a rule set instead of --flow (the rule set of --emit-config for acl).", valueName: "PROFILE:RULES"))
    var trace: String?
    @Option(help: "Distinct packets of a trace: --send --trace, and the program-cost trace rows.") var tracePackets = 10_000
    @Option(help: ArgumentHelp("Attach the trivial XDP_DROP program natively to --interface through a bpf_link pinned at this bpffs path (remove the pin to detach), and exit.", valueName: "PIN"))
    var attachDrop: String?
    @Option(help: ArgumentHelp("Attach the generator's relay natively to --interface, redirecting every frame to this interface, through a bpf_link pinned at --attach-drop's path, and exit: frames sent into the veth whose peer is --interface reach this one as XDP frames, as a NIC's would (bpf/bench/xdp_relay.bpf.c).", valueName: "IF"))
    var relayTo: String?

    func validate() throws {
        guard profiles.allSatisfy({ RuleProfile(rawValue: $0) != nil }) else { throw ValidationError("--profiles takes acl, fw and ipc") }
        guard rules.allSatisfy({ $0 >= 1 && $0 <= 200_000 }) else { throw ValidationError("--rules takes counts from 1 to 200000") }
        guard runs >= 1, self.repeat >= 1, frames >= 1, tracePackets >= 10, sources >= 1 else {
            throw ValidationError("--runs, --repeat, --frames and --sources must be at least 1, --trace-packets at least 10")
        }
        guard rate >= 0, seconds > 0 else { throw ValidationError("--rate takes 0 or more frames per second, --seconds more than 0") }
    }

    enum Path: String, CaseIterable {
        case allow = "firewall allow", drop = "firewall drop", miss = "miss -> default"
        case ruleUnder = "limit/rule under", ruleOver = "limit/rule over"
        case sourceUnder = "limit/source under", sourceOver = "limit/source over"

        static let firewall: [Path] = [.allow, .drop, .miss]

        /// The rate limit every frame of a rate-limit path meets.
        var limit: RateLimit? {
            let (per, pps): (RateLimit.Scope, UInt64)
            switch self {
            case .allow, .drop, .miss: return nil
            case .ruleUnder: (per, pps) = (.rule, 1 << 40)
            case .ruleOver: (per, pps) = (.rule, 1)
            case .sourceUnder: (per, pps) = (.source, 1 << 40)
            case .sourceOver: (per, pps) = (.source, 1)
            }
            return RateLimit(name: rawValue, proto: nil, src: [], dst: [], srcPorts: [], dstPorts: [], tcpFlags: [], per: per,
                             packetsPerSecond: pps, burstPackets: 1, bytesPerSecond: nil, burstBytes: nil,
                             sourceIPv4Prefix: 32, sourceIPv6Prefix: 128)
        }
    }

    /// Medians over the runs. The ratios are medians of each run's ratio against the
    /// baseline measured right beside it, so a slow spell of the shared machine, which
    /// slows the baselines alike, cancels out instead of landing on a few rows.
    struct Row {
        var profile: String, rules: Int, path: Path, nodes: Int, trees: Int, compileMs: Double
        var ns: Double, floor: Double, xdpFilter: Double?
        var perFloor: Double, perFilter: Double?
        /// ns per packet of each run, in run order.
        var runs: [Double]

        init(profile: String, rules: Int, path: Path, nodes: Int, trees: Int, compileMs: Double,
             ours: [Double], floor: [Double], xdpFilter: [Double]) {
            let median = Bench.median
            (self.profile, self.rules, self.path, self.nodes, self.trees, self.compileMs) = (profile, rules, path, nodes, trees, compileMs)
            (ns, self.floor, runs) = (median(ours), median(floor), ours)
            self.xdpFilter = xdpFilter.isEmpty ? nil : median(xdpFilter)
            perFloor = median(zip(ours, floor).map(/))
            perFilter = xdpFilter.isEmpty ? nil : median(zip(ours, xdpFilter).map(/))
        }
    }

    /// A rule set's compiled table in a program instance of its own, and its frames by path.
    struct Target {
        var profile: String, rules: Int, table: FirewallTable, compileMs: Double
        var inner: BPFMap, program: BPFObject, programFD: Int32
        /// Each path's frames, built once.
        var paths: [(Path, [[UInt8]])]
        /// The rule set's many-flow trace (TraceBench.swift).
        var trace: [[UInt8]]

        /// Installs the generation `path` runs under: the rule set, and for a rate-limit
        /// path its limit. Each limit has buckets of its own (its limit slot), so one
        /// path's leaves none drained or full for the next.
        func select(_ path: Path) throws {
            var tables: [GenerationTable: BPFMap] = [.firewall: inner]
            if let limit = path.limit {
                let slot = UInt32(Path.allCases.firstIndex(of: path)!)
                tables[.rateLimits] = try Dataplane.limitTable(try RateLimitCompiler.compile([limit], slots: [limit.name: slot]))
            }
            let maps = try GenerationMaps(program)
            try maps.install(tables)
        }
    }

    func run() throws {
        if let emitConfig {
            var fw = RuleProfile.acl(count: emitConfig, seed: 42)
            if let i = flipRule, fw.rules.indices.contains(i) { fw.rules[i].action = fw.rules[i].action == .allow ? .drop : .allow }
            if let i = deleteRule, fw.rules.indices.contains(i) { fw.rules.remove(at: i) }
            if let i = insertRule, fw.rules.indices.contains(i) {
                var rule = fw.rules[i]
                rule.name = "inserted"
                rule.action = rule.action == .allow ? .drop : .allow
                fw.rules.insert(rule, at: i)
            }
            print(RuleProfile.config(fw, interface: interface))
            return
        }
        if compileOnly { return printShapes() }
        if let send { return try self.send(send) }
        if let attachDrop { return try attachBenchProgram(pin: attachDrop) }
        BPFLog.install(verbose: false)
        if let netns { try Netns.enter(netns) }
        let holders = try holdOn.map { list in
            let names = list.split(separator: ",").map(String.init)
            guard names.count >= 2 + rules.count, names.allSatisfy({ Netns.ifindex(of: $0) != nil }) else {
                throw ValidationError("--hold-on takes \(2 + rules.count) existing interfaces (2 + one per rule count), e.g. xb0,xb1,xb2,...")
            }
            return names
        }
        /// Keeps `fd` in the XDP dispatcher while the returned link is open.
        func hold(_ fd: Int32, on slot: Int) throws -> OwnedDescriptor? {
            guard let name = holders?[slot], let ifindex = Netns.ifindex(of: name) else { return nil }
            return try XDPLink.hold(programFD: fd, ifindex: ifindex, interface: name, mode: .native)
        }
        let root = "/sys/fs/bpf/xdpctl-bench-\(getpid())"
        let floor = try BPFObject(.xdpDrop, pinRoot: nil)
        let floorFD = try floor.programFD("xdp_drop")
        let filter = try loadXDPFilter(root: root + "-xdpfilter")
        let floorLink = try hold(floorFD, on: 0)
        var filterLink = try filter.flatMap { try hold($0.programFD, on: 1) }
        defer { withExtendedLifetime((floorLink, filterLink)) {} }
        defer { try? PinRoot(root + "-xdpfilter").removeTree(root + "-xdpfilter") }
        defer { try? PinRoot(root + "-lb").removeTree(root + "-lb") }

        // Every rule set gets its own program instance, sized for its table as apply
        // sizes one, and pin directory (maps pinned by name would be shared otherwise).
        var targets: [Target] = [], dirs: [String] = []
        defer { for dir in dirs { try? PinRoot(dir).removeTree(dir) } }
        for profile in profiles.compactMap(RuleProfile.init(rawValue:)) { for n in rules {
            let fw = profile.rules(count: n, seed: 42)
            let clock = ContinuousClock()
            let start = clock.now
            let table: FirewallTable
            do {
                table = try FirewallCompiler().compile(fw, slots: sequentialSlots(fw))
            } catch {
                print("\(profile.rawValue) \(n) rules: not measured: \(error)")
                continue
            }
            let elapsed = clock.now - start
            let compileMs = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            let dir = "\(root)-\(profile.rawValue)-\(n)"
            try? PinRoot(dir).removeTree(dir)
            mkdir(dir, 0o700)
            dirs.append(dir) // removed at the end, even when the program fails to load
            let inner = try Dataplane.firewallTable(capacity: FirewallTable.capacity(for: table.nodes.count), table)
            let program = try Dataplane.ingressProgram(pinRoot: dir, table: inner)
            var paths = framesByPath(fw, table)
            // Rate-limit paths at the smallest rule count: the frames the firewall lets
            // through to its default, with each limit in turn in the table's dp_rl slot.
            if n == rules.min(), let allowed = paths.first(where: { $0.0 == .miss })?.1 {
                paths += Path.allCases.filter { $0.limit != nil }.map { ($0, allowed) }
            }
            // xdp-filter gets rules for every frame once; they serve every run.
            if let filter { try filter.match(paths.flatMap(\.1)) }
            targets.append(Target(profile: profile.rawValue, rules: n, table: table, compileMs: compileMs, inner: inner,
                                  program: program, programFD: try program.programFD(DP_PROG_XDP),
                                  paths: paths.map { ($0.0, $0.1.map(PacketBuilder().frame)) },
                                  trace: RuleProfile.trace(fw, count: tracePackets).map(PacketBuilder().frame)))
        } }

        // Runs go round every path in turn (run -1 warms caches and clocks up, and is not
        // counted), so a slow spell of the shared machine spreads over all rows instead of
        // landing on one. Within a run, a path's frames are measured one by one at every
        // rule count of the profile in turn, each beside the baselines: the two sides of a
        // ratio to the fewest rules are then measured within a millisecond of each other.
        var samples = targets.map { $0.paths.map { _ in (ours: [Double](), floor: [Double](), filter: [Double]()) } }
        for run in -1..<runs {
            for profile in profiles {
                let members = targets.indices.filter { targets[$0].profile == profile }
                let links = try members.enumerated().map { slot, t in try hold(targets[t].programFD, on: 2 + slot) }
                try withExtendedLifetime(links) {
                    for path in Path.allCases {
                        let turns = members.compactMap { t in targets[t].paths.firstIndex { $0.0 == path }.map { (t, $0) } }
                        for (t, _) in turns { try targets[t].select(path) }
                        var sums = turns.map { _ in (ours: 0.0, floor: 0.0, filter: 0.0, frames: 0) }
                        for f in 0..<frames {
                            for (k, (t, i)) in turns.enumerated() where f < targets[t].paths[i].1.count {
                                let packet = targets[t].paths[i].1[f]
                                sums[k].ours += try time(targets[t].programFD, packet)
                                sums[k].floor += try time(floorFD, packet)
                                sums[k].filter += try filter.map { try time($0.programFD, packet) } ?? 0
                                sums[k].frames += 1
                            }
                        }
                        guard run >= 0 else { continue }
                        for (k, (t, i)) in turns.enumerated() {
                            let n = Double(max(1, sums[k].frames))
                            samples[t][i].ours.append(sums[k].ours / n)
                            samples[t][i].floor.append(sums[k].floor / n)
                            if filter != nil { samples[t][i].filter.append(sums[k].filter / n) }
                        }
                    }
                }
            }
            if run >= 0 { FileOutput.standardError.write("run \(run + 1) of \(runs) measured\n") }
        }
        var rows: [Row] = []
        for (t, target) in targets.enumerated() {
            for (i, (path, _)) in target.paths.enumerated() {
                let s = samples[t][i]
                rows.append(Row(profile: target.profile, rules: target.rules, path: path, nodes: target.table.nodes.count, trees: target.table.trees,
                                compileMs: target.compileMs, ours: s.ours, floor: s.floor, xdpFilter: s.filter))
            }
        }
        print(render(rows))
        fflush(nil) // before the next rows report progress on stderr
        // dirs[i] is targets[i]'s pin directory: the variant shares its maps.
        let captureCost = try targets.isEmpty ? nil : measureCaptureCost(targets[0], dir: dirs[0])
        if let captureCost { print("\n" + renderCaptureCost(captureCost)) }
        fflush(nil)
        let traceRows = try measureTraces(targets, floorFD: floorFD, hold: hold)
        print("\n" + renderTraces(traceRows))
        fflush(nil)
        var balancerRows: [BalancerRow] = []
        if balancer { // its two wrappers take the holds of xdp-filter and of our program
            filterLink = nil
            balancerRows = try measureBalancer(floorFD: floorFD, root: root + "-lb", hold: hold)
            print("\n" + renderBalancer(balancerRows))
        }
        if let json { try jsonText(rows, traceRows, balancerRows, captureCost).write(toFile: json, atomically: true, encoding: .utf8) }
    }
}
