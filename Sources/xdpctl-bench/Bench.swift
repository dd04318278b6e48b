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

    @Option(parsing: .upToNextOption, help: "Rule counts to measure.") var rules: [Int] = [10, 1000, 10000]
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
    @Option(help: ArgumentHelp("Traffic generator: send this many UDP frames out of --interface with live-frames PROG_TEST_RUN, print JSON, and exit. The frames go to MAC 02:00:00:00:00:01.", valueName: "FRAMES"))
    var liveFrames: Int?
    @Option(help: "With --live-frames: the flow, as SRC,DST,DPORT.") var flow = "10.201.0.1,10.201.0.2,9"
    @Option(help: "With --live-frames: rotate the IPv4 source over this many addresses from SRC up.") var sources = 1
    @Option(help: ArgumentHelp("Attach the trivial XDP_DROP program natively to --interface through a bpf_link pinned at this bpffs path (remove the pin to detach), and exit.", valueName: "PIN"))
    var attachDrop: String?

    func validate() throws {
        guard profiles.allSatisfy({ RuleProfile(rawValue: $0) != nil }) else { throw ValidationError("--profiles takes acl, fw and ipc") }
        guard rules.allSatisfy({ $0 >= 1 && $0 <= 200_000 }) else { throw ValidationError("--rules takes counts from 1 to 200000") }
        guard runs >= 1, self.repeat >= 1, frames >= 1 else { throw ValidationError("--runs, --repeat and --frames must be at least 1") }
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
            try maps.install(tables, id: (try maps.running()?.id ?? 0) + 1)
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
        if let liveFrames { return try generate(liveFrames) }
        if let attachDrop { return try attachFloor(pin: attachDrop) }
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
        func hold(_ fd: Int32, on slot: Int) throws -> FileDescriptor? {
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
                                  paths: paths.map { ($0.0, $0.1.map(PacketBuilder().frame)) }))
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
        fflush(nil) // before the load-balancer rows report progress on stderr
        var balancerRows: [BalancerRow] = []
        if balancer { // its two wrappers take the holds of xdp-filter and of our program
            filterLink = nil
            balancerRows = try measureBalancer(floorFD: floorFD, root: root + "-lb", hold: hold)
            print("\n" + renderBalancer(balancerRows))
        }
        if let json { try jsonText(rows, balancerRows).write(toFile: json, atomically: true, encoding: .utf8) }
    }

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

    /// The mean work of the benchmark's frames on each firewall path, as the reference
    /// walk counts it.
    func walkWork(_ fw: Firewall, _ table: FirewallTable) -> String {
        framesByPath(fw, table).map { path, keys in
            var work = FirewallTable.Work()
            for k in keys { _ = table.classify(k.words, counting: &work) }
            let n = Double(keys.count)
            return String(format: "%@ %.1f / %.1f / %.1f / %.1f", path.rawValue, Double(work.trees) / n, Double(work.cuts) / n,
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

    func attachFloor(pin: String) throws {
        if let netns { try Netns.enter(netns) }
        guard let ifindex = Netns.ifindex(of: interface) else { throw ValidationError("--interface \(interface) does not exist here") }
        BPFLog.install(verbose: false)
        let floor = try BPFObject(.xdpDrop, pinRoot: nil)
        try XDPLink.attach(programFD: try floor.programFD("xdp_drop"), ifindex: ifindex, interface: interface, mode: .native, pinPath: pin)
    }

    /// Sends `count` frames of --flow out of --interface and reports how long that took.
    func generate(_ count: Int) throws {
        let parts = flow.split(separator: ",").map(String.init)
        guard parts.count == 3, let src = IPAddress(parts[0]), let dst = IPAddress(parts[1]), let port = UInt16(parts[2]) else {
            throw ValidationError("--flow takes SRC,DST,DPORT, e.g. 10.201.0.1,10.201.0.2,9")
        }
        if let netns { try Netns.enter(netns) }
        guard let ifindex = Netns.ifindex(of: interface) else { throw ValidationError("--interface \(interface) does not exist here") }
        BPFLog.install(verbose: false)
        let object: BPFObject, program: Int32
        if sources > 1 {
            guard src.family == .ipv4 else { throw ValidationError("--sources works with an IPv4 --flow") }
            object = try BPFObject(.xdpTxSources, pinRoot: nil)
            program = try object.programFD("xdp_tx_sources")
            // struct gen_sources: base, count, next
            try object.map("gen_sources").update(UInt32(0), (src.words[0], UInt32(sources), UInt64(0)))
        } else {
            object = try BPFObject(.xdpTx, pinRoot: nil)
            program = try object.programFD("xdp_tx")
        }
        let frame = PacketBuilder().frame(PacketKey(src: src, dst: dst, proto: 17, srcPort: 40000, dstPort: port))
        let start = ContinuousClock.now
        let perFrame = try TestRun.live(programFD: program, packet: frame, ifindex: ifindex, count: count)
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(JSONOutput.render(.obj(["frames": .int(count), "seconds": .number(String(format: "%.6f", seconds)),
                                      "generator_ns_per_frame": .int(Int(perFrame))])))
    }

    /// Frames that hit allow rules and drop rules spread over the whole list, and frames
    /// that match no rule; each checked against the compiled table.
    func framesByPath(_ fw: Firewall, _ table: FirewallTable) -> [(Path, [PacketKey])] {
        var rng = SeededRandom(seed: UInt64(fw.rules.count))
        var byPath: [Path: [PacketKey]] = [:]
        var i = 0
        while Path.firewall.contains(where: { (byPath[$0]?.count ?? 0) < frames }) && i < 50 * frames {
            let key = i % 3 == 2
                ? PacketKey(src: IPAddress("192.0.2.\(i % 250)")!, dst: IPAddress("198.51.100.\(i % 250)")!, proto: 47) // GRE: no ACL rule matches
                : RuleProfile.packet(hitting: fw.rules[(i * 7919) % fw.rules.count], rng: &rng)
            let node = table.classify(key.words)
            let path: Path = node == 0 ? .miss : table.nodes[node].action == UInt8(DP_FW_DROP.rawValue) ? .drop : .allow
            if byPath[path, default: []].count < frames { byPath[path, default: []].append(key) }
            i += 1
        }
        return Path.firewall.compactMap { p in byPath[p].map { (p, $0) } }
    }

    /// xdp-filter (allow mode: a match drops) with rules on the same frames' destination
    /// address and port, so it does its full lookups.
    struct XDPFilter {
        let object: BPFObject
        let programFD: Int32
        let ports: BPFMap, ipv4: BPFMap, ipv6: BPFMap

        func match(_ keys: [PacketKey]) throws {
            let dst: UInt64 = 1 << 1, tcp: UInt64 = 1 << 2, udp: UInt64 = 1 << 3
            for k in keys {
                if let port = k.dstPort { try ports.updatePerCPU(UInt32(port), dst | tcp | udp) }
                if k.family == .ipv4 {
                    try ipv4.updatePerCPU(k.dst.words[0].bigEndian, dst)
                } else {
                    var raw = [UInt8](repeating: 0, count: 16)
                    for (w, word) in k.dst.words.enumerated() { withUnsafeBytes(of: word.bigEndian) { raw.replaceSubrange(w * 4..<w * 4 + 4, with: $0) } }
                    try raw.withUnsafeBytes { try ipv6.updatePerCPU($0.load(as: (UInt64, UInt64).self), dst) }
                }
            }
        }
    }

    func loadXDPFilter(root: String) throws -> XDPFilter? {
        guard let data = FileManager.default.contents(atPath: xdpFilter) else {
            FileOutput.standardError.write("xdpctl-bench: \(xdpFilter) not found; no xdp-filter column (install xdp-tools)\n")
            return nil
        }
        mkdir(root, 0o700)
        let object = try BPFObject(name: "xdpfilt_alw_all", bytes: [UInt8](data), pinRoot: root)
        return XDPFilter(object: object, programFD: try object.programFD("xdpfilt_alw_all"), ports: try object.map("filter_ports"),
                         ipv4: try object.map("filter_ipv4"), ipv6: try object.map("filter_ipv6"))
    }

    /// ns per run of program `fd` on `packet`, averaged over --repeat runs.
    func time(_ fd: Int32, _ packet: [UInt8]) throws -> Double {
        Double(try TestRun.run(programFD: fd, packet: packet, repeat: self.repeat).duration)
    }

    func mean(_ fd: Int32, _ packets: [[UInt8]]) throws -> Double {
        try packets.reduce(0) { try $0 + time(fd, $1) } / Double(packets.count)
    }

    static func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }

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

    func jsonText(_ rows: [Row], _ balancerRows: [BalancerRow]) -> String {
        func num(_ x: Double) -> JSONValue { .number(String(format: "%.2f", x)) }
        return JSONOutput.render(.obj(["runs": .int(runs), "repeat": .int(self.repeat), "frames": .int(frames),
            "rows": .array(rows.map { r in .obj([
                "profile": .string(r.profile), "rules": .int(r.rules), "path": .string(r.path.rawValue), "tree_nodes": .int(r.nodes), "trees": .int(r.trees),
                "compile_ms": num(r.compileMs), "ns_per_packet": num(r.ns), "xdp_drop_ns_per_packet": num(r.floor),
                "xdp_filter_ns_per_packet": r.xdpFilter.map(num) ?? .null,
                "ratio_xdp_drop": num(r.perFloor), "ratio_xdp_filter": r.perFilter.map(num) ?? .null,
                "ratio_fewest_rules": num(fewest(r, rows)), "runs_ns": .array(r.runs.map(num))]) }),
            "lb_rows": .array(balancerRows.map { r in .obj([
                "path": .string(r.path.rawValue), "ns_per_packet": num(r.ns), "xdp_drop_ns_per_packet": num(r.floor)]) })]), indent: "  ")
    }
}
