import CLibBPF
import CXDPCtlABI
import Glibc
import XDPCtlBPF

/// A kind of table a generation holds; each kind has a map with a slot per generation
/// (xdpctl_abi.h, "generations").
public enum GenerationTable: CaseIterable, Sendable {
    case firewall, rateLimits, vips, ring, snat, dnat

    public var mapName: String {
        switch self {
        case .firewall: DP_MAP_FW
        case .rateLimits: DP_MAP_RL
        case .vips: DP_MAP_LB_VIPS
        case .ring: DP_MAP_LB_RING
        case .snat: DP_MAP_NAT_SNAT
        case .dnat: DP_MAP_NAT_DNAT
        }
    }

    /// The bit the generation record sets when it holds this kind.
    var bit: UInt32 {
        switch self {
        case .firewall: DP_GEN_FIREWALL.rawValue
        case .rateLimits: DP_GEN_RATE_LIMITS.rawValue
        case .vips, .ring: DP_GEN_BALANCERS.rawValue
        case .snat, .dnat: DP_GEN_NAT.rawValue
        }
    }
}

/// The running generation as dp_gen's word says it (xdpctl_abi.h).
public struct RunningGeneration: Sendable, Equatable {
    /// The slot of every table map that holds its tables.
    public var slot: UInt32
    /// Its tables: enum dp_gen_table bits.
    public var tables: UInt32

    init(word: UInt32) {
        slot = word & DP_GEN_SLOT
        tables = word & ~DP_GEN_SLOT
    }
}

/// An interface's generation root (dp_gen) and its table maps: what one apply stages,
/// flips and, on failure, flips back.
public struct GenerationMaps: Sendable {
    let root: BPFMap
    /// Updated after a store to the root, to wait for an RCU grace period.
    let wait: BPFMap
    let outer: [GenerationTable: BPFMap]

    /// The maps pinned in an interface's pin directory.
    public init(pinDirectory dir: String) throws(BPFError) {
        try self.init { name throws(BPFError) in try BPFMap.open(pinned: "\(dir)/\(name)") }
    }

    /// The maps pinned in an interface's pin directory; nil when they are not this
    /// build's (a program from before generation roots, ABI 2; before NAT, ABI 3; or
    /// with connection tables of its own, ABI 4).
    public static func pinned(in dir: String) throws(BPFError) -> GenerationMaps? {
        guard access("\(dir)/\(DP_MAP_GEN)", F_OK) == 0, access("\(dir)/\(DP_MAP_STATS)", F_OK) == 0,
              access("\(dir)/dp_lb_ct", F_OK) != 0 else { return nil }
        return try GenerationMaps(pinDirectory: dir)
    }

    /// The maps of a loaded program.
    public init(_ object: BPFObject) throws(BPFError) {
        try self.init { name throws(BPFError) in try object.map(name) }
    }

    private init(_ open: (String) throws(BPFError) -> BPFMap) throws(BPFError) {
        root = try open(DP_MAP_GEN)
        wait = try open(DP_MAP_GEN_WAIT)
        var outer: [GenerationTable: BPFMap] = [:]
        for kind in GenerationTable.allCases { outer[kind] = try open(kind.mapName) }
        self.outer = outer
    }

    /// The running generation; nil when none was installed (or it has no tables in slot 0).
    public func running() throws(BPFError) -> RunningGeneration? {
        let word = try word()
        return word == 0 ? nil : RunningGeneration(word: word)
    }

    /// The root's word as it is now, to flip back to.
    func word() throws(BPFError) -> UInt32 { try root.lookup(UInt32(0)) ?? 0 }

    /// The outer map of a kind (for status: its memory).
    func map(_ kind: GenerationTable) -> BPFMap { outer[kind]! }

    /// The table of `kind` in `slot`, if it holds one.
    public func table(_ kind: GenerationTable, slot: UInt32) throws(BPFError) -> BPFMap? {
        try outer[kind]!.innerMap(at: slot)
    }

    /// The running generation's tables, for a generation that keeps some of them.
    func runningTables() throws(BPFError) -> [GenerationTable: BPFMap] {
        guard let gen = try running() else { return [:] }
        var out: [GenerationTable: BPFMap] = [:]
        for kind in GenerationTable.allCases where gen.tables & kind.bit != 0 {
            if let table = try table(kind, slot: gen.slot) { out[kind] = table }
        }
        return out
    }

    /// Fills slot `slot` with `tables`; the kinds missing from it are emptied there.
    /// No packet reads the slot until a flip names it. A table the slot holds already
    /// stays without an update: every update of a map of maps waits for an RCU grace
    /// period (8 ms here), and the spare a patch fills is the table the slot holds.
    public func stage(_ tables: [GenerationTable: BPFMap], slot: UInt32) throws(BPFError) {
        for kind in GenerationTable.allCases {
            let held: UInt32? = try outer[kind]!.lookup(slot)
            if let table = tables[kind] {
                let id = try table.info().id
                if held != id { try outer[kind]!.update(slot, table.fd.raw) }
            } else if held != nil {
                try outer[kind]!.delete(slot)
            }
        }
    }

    /// Makes the generation of `tables`, staged in `slot`, the running one: one atomic
    /// store of the root's word, then a wait until no program run holds the old word.
    /// The slot the previous generation used keeps its tables (no packet reads them)
    /// until the next apply stages over them.
    public func flip(slot: UInt32, tables: some Sequence<GenerationTable>, flags: UInt32 = 0) throws(BPFError) {
        try store(slot: slot, tables: tables, flags: flags)
        try waitForReaders()
    }

    /// The flip without its wait, for an apply that flips several interfaces and then
    /// waits once (the grace period is the whole kernel's). `flags`: bits that name no
    /// table (DP_GEN_NAT_PEERS).
    func store(slot: UInt32, tables: some Sequence<GenerationTable>, flags: UInt32 = 0) throws(BPFError) {
        try root.storeWord(slot | flags | tables.reduce(0) { $0 | $1.bit })
    }

    /// Puts back a word saved before a flip, and waits until no program run holds the other.
    func restore(_ word: UInt32) throws(BPFError) {
        try root.storeWord(word)
        try waitForReaders()
    }

    /// Waits for an RCU grace period: the kernel returns from an update of a map of maps
    /// (dp_gen_wait, which no program reads) only after one, so no program run still
    /// holds a word stored before.
    func waitForReaders() throws(BPFError) {
        let token = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_gen_wait", keySize: 4, valueSize: 4, maxEntries: 1)
        try wait.update(UInt32(0), token.fd.raw)
    }

    /// Stages `tables` in the slot the running generation does not use and flips to it:
    /// the way tests and the benchmark install a whole generation at once.
    public func install(_ tables: [GenerationTable: BPFMap]) throws(BPFError) {
        let slot = try running().map { 1 - $0.slot } ?? 0
        try stage(tables, slot: slot)
        try flip(slot: slot, tables: tables.keys)
    }

    /// Empties every table map's slot `slot` (an apply that failed after staging it).
    func clear(slot: UInt32) throws(BPFError) {
        for kind in GenerationTable.allCases { try outer[kind]!.delete(slot) }
    }
}
