import CLibBPF
import CXDPCtlABI
import Glibc
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore
@testable import XDPCtlKit

/// The XDP program loaded once per test into its own pin root, with a compiled rule set.
final class LoadedProgram {
    let root: PinRoot
    let object: BPFObject
    let programFD: Int32
    let stats: BPFMap
    let ruleStats: BPFMap
    let generations: GenerationMaps
    /// The tables of the generation installed last.
    var tables: [GenerationTable: BPFMap] = [:]
    var table: FirewallTable?

    let capacity: Int

    /// Loads the program; with `fw`, compiles and installs that rule set.
    static func load(_ fw: Firewall? = nil, capacity: Int = Int(DP_FW_MIN_NODES), label: String = #function) throws -> LoadedProgram {
        let p = try LoadedProgram(capacity: capacity, label: label)
        if let fw { try p.install(fw) }
        return p
    }

    private init(capacity: Int, label: String) throws {
        self.capacity = capacity
        #expect(getuid() == 0, "kernel tests need root: run them through scripts/test.sh")
        let name = label.filter { $0.isLetter || $0.isNumber }.prefix(24)
        root = PinRoot("/sys/fs/bpf/xdpctl-ktest-\(getpid())-\(name)")
        try? root.removeTree(root.path)
        try root.create()
        let dir = root.interface("test")
        mkdir(dir, 0o700)
        object = try Dataplane.ingressProgram(pinRoot: dir, table: try Self.table(capacity))
        programFD = try object.programFD(DP_PROG_XDP)
        stats = try object.map(DP_MAP_STATS)
        ruleStats = try object.map(DP_MAP_RULE_STATS)
        generations = try GenerationMaps(object)
    }

    deinit { try? root.removeTree(root.path) }

    static func table(_ capacity: Int, _ table: FirewallTable? = nil) throws -> BPFMap {
        try Dataplane.firewallTable(capacity: capacity, table)
    }

    /// Installs a new generation: the last one's tables, with `changes` (nil: removed).
    func flip(_ changes: [GenerationTable: BPFMap]) throws {
        tables.merge(changes) { $1 }
        try generations.install(tables)
    }

    /// Installs a generation with this rule set (and the last one's other tables).
    func install(_ fw: Firewall) throws {
        let table = try FirewallCompiler().compile(fw, slots: sequentialSlots(fw))
        try flip([.firewall: try Self.table(capacity, table)])
        self.table = table
    }

    /// Installs a generation with rate limits (slots 1, 2, ... in order) and, if given, a
    /// firewall in front of them.
    func installLimits(_ limits: [RateLimit], firewall: Firewall? = nil) throws {
        let slots = Dictionary(uniqueKeysWithValues: limits.enumerated().map { ($1.name, UInt32($0 + 1)) })
        if let firewall {
            table = try FirewallCompiler().compile(firewall, slots: sequentialSlots(firewall))
            tables[.firewall] = try Self.table(capacity, table!)
        }
        try flip([.rateLimits: try Dataplane.limitTable(try RateLimitCompiler.compile(limits, slots: slots))])
    }

    /// Packets the limit in `slot` passed and dropped, over all CPUs.
    func limitCounters(_ slot: UInt32) throws -> [UInt64] {
        let per = try object.map(DP_MAP_RL_STATS).lookupPerCPU(slot, as: dp_rl_stats.self)
        return [per.reduce(0) { $0 + $1.passed }, per.reduce(0) { $0 + $1.dropped }]
    }

    struct Counters: Equatable, CustomStringConvertible {
        var rx: UInt64 = 0, verdicts = [UInt64](repeating: 0, count: 5), reasons = [UInt64](repeating: 0, count: 5)
        var rules: [UInt32: UInt64] = [:]
        var description: String { "rx \(rx) verdicts \(verdicts) reasons \(reasons) rules \(rules.filter { $0.value > 0 })" }
    }

    func counters(slots: Int) throws -> Counters {
        var c = Counters()
        for s in try stats.lookupPerCPU(0, as: dp_if_stats.self) {
            c.rx += s.rx_packets
            withUnsafeBytes(of: s.verdict) { r in for i in 0..<5 { c.verdicts[i] += r.load(fromByteOffset: i * 8, as: UInt64.self) } }
            withUnsafeBytes(of: s.drop_reason) { r in for i in 0..<5 { c.reasons[i] += r.load(fromByteOffset: i * 8, as: UInt64.self) } }
        }
        for slot in 0..<UInt32(slots) {
            c.rules[slot] = try ruleStats.lookupPerCPU(slot, as: dp_rule_stats.self).reduce(0) { $0 + $1.packets }
        }
        return c
    }

    func run(_ packet: [UInt8]) throws -> TestRun.Result {
        try TestRun.run(programFD: programFD, packet: packet)
    }
}
