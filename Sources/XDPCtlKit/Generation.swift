import CLibBPF
import CXDPCtlABI
import XDPCtlBPF

/// A kind of table a generation holds; each kind has a map with a slot per generation
/// (xdpctl_abi.h, "generations").
public enum GenerationTable: CaseIterable, Sendable {
    case firewall, rateLimits, vips, ring

    public var mapName: String {
        switch self {
        case .firewall: DP_MAP_FW
        case .rateLimits: DP_MAP_RL
        case .vips: DP_MAP_LB_VIPS
        case .ring: DP_MAP_LB_RING
        }
    }

    /// The bit the generation record sets when it holds this kind.
    var bit: UInt32 {
        switch self {
        case .firewall: DP_GEN_FIREWALL.rawValue
        case .rateLimits: DP_GEN_RATE_LIMITS.rawValue
        case .vips, .ring: DP_GEN_BALANCERS.rawValue
        }
    }
}

/// An interface's generation root (dp_gen) and its table maps: what one apply stages,
/// flips and, on failure, flips back.
public struct GenerationMaps: Sendable {
    let root: BPFMap
    let outer: [GenerationTable: BPFMap]

    /// The maps pinned in an interface's pin directory.
    public init(pinDirectory dir: String) throws(BPFError) {
        root = try BPFMap.open(pinned: "\(dir)/\(DP_MAP_GEN)")
        var outer: [GenerationTable: BPFMap] = [:]
        for kind in GenerationTable.allCases { outer[kind] = try BPFMap.open(pinned: "\(dir)/\(kind.mapName)") }
        self.outer = outer
    }

    /// The maps of a loaded program.
    public init(_ object: BPFObject) throws(BPFError) {
        root = try object.map(DP_MAP_GEN)
        var outer: [GenerationTable: BPFMap] = [:]
        for kind in GenerationTable.allCases { outer[kind] = try object.map(kind.mapName) }
        self.outer = outer
    }

    /// The running generation; nil when none was ever installed.
    public func running() throws(BPFError) -> dp_generation? {
        guard let record = try root.innerMap(at: 0) else { return nil }
        return try record.lookup(UInt32(0))
    }

    /// The root's record map as it is now, to flip back to.
    func record() throws(BPFError) -> BPFMap? { try root.innerMap(at: 0) }

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

    /// Makes the generation of `tables`, staged in `slot`, the running one: one update
    /// of the root, which returns once no program run holds the previous record. The
    /// slot the previous generation used keeps its tables (no packet reads them) until
    /// the next apply stages over them.
    public func flip(id: UInt64, slot: UInt32, tables: some Sequence<GenerationTable>) throws(BPFError) {
        var gen = dp_generation()
        gen.id = id
        gen.slot = slot
        gen.tables = tables.reduce(0) { $0 | $1.bit }
        let record = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_gen_record", keySize: 4,
                                       valueSize: MemoryLayout<dp_generation>.size, maxEntries: 1)
        try record.update(UInt32(0), gen)
        try root.update(UInt32(0), record.fd.raw)
    }

    /// Puts back a record saved before a flip (nil: no generation at all).
    func restore(_ record: BPFMap?) throws(BPFError) {
        if let record {
            try root.update(UInt32(0), record.fd.raw)
        } else {
            try root.delete(UInt32(0))
        }
    }

    /// Stages `tables` in the slot the running generation does not use and flips to it:
    /// the way tests and the benchmark install a whole generation at once.
    public func install(_ tables: [GenerationTable: BPFMap], id: UInt64) throws(BPFError) {
        let slot = try running().map { 1 - $0.slot } ?? 0
        try stage(tables, slot: slot)
        try flip(id: id, slot: slot, tables: tables.keys)
    }

    /// Empties every table map's slot `slot` (an apply that failed after staging it).
    func clear(slot: UInt32) throws(BPFError) {
        for kind in GenerationTable.allCases { try outer[kind]!.delete(slot) }
    }
}
