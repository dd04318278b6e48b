import CLibBPF
import CXDPCtlABI
import XDPCtlBPF
import XDPCtlCore

/// NAT's part of an apply: the SNAT and DNAT tables; counters of new rules, zeroed
/// before any table names them; and the connections of removed rules, which end once
/// the flip has made the rules go (docs/config.md, "nat").
struct NATInstaller: Installer {
    let root: PinRoot

    func build(_ stage: InterfaceStage) throws(BPFError) -> [GenerationTable: BPFMap] {
        guard let nat = stage.plan.nat else { return [:] }
        return try Dataplane.natTables(nat)
    }

    func prepare(_ stage: InterfaceStage) throws(BPFError) {
        guard !stage.plan.freshNatSlots.isEmpty else { return }
        let stats = try BPFMap.open(pinned: root.shared(DP_MAP_NAT_STATS))
        for slot in stage.plan.freshNatSlots { try stats.updatePerCPU(slot, dp_nat_stats()) }
    }

    func retire(_ stage: InterfaceStage) throws(BPFError) {
        let removed = Set(stage.plan.removedNatSlots)
        guard !removed.isEmpty else { return }
        let ifindex = UInt32(bitPattern: stage.plan.ifindex)
        _ = try ConnectionTable(root: root).remove { $0.isNAT && $0.ifindex == ifindex && removed.contains($0.rule) }
    }
}

extension Dataplane {
    /// The generation tables holding `tables`: SNAT entries and DNAT targets.
    public static func natTables(_ tables: NATTables) throws(BPFError) -> [GenerationTable: BPFMap] {
        let snat = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_nat_snat_t", keySize: 4,
                                     valueSize: MemoryLayout<dp_nat_snat>.size, maxEntries: Int(DP_NAT_MAX_SNAT) + 1)
        try snat.fill(tables.snat)
        let dnat = try BPFMap.create(type: BPF_MAP_TYPE_HASH, name: "dp_nat_dnat_t", keySize: MemoryLayout<dp_lb_endpoint>.size,
                                     valueSize: MemoryLayout<dp_nat_dnat>.size, maxEntries: Int(DP_NAT_MAX_DNAT))
        for (key, value) in tables.dnat { try dnat.update(key, value) }
        return [.snat: snat, .dnat: dnat]
    }
}

/// The connection table (dp_ct and dp_ct_new, xdpctl_abi.h) every interface's programs
/// share, NAT's and the load balancer's: both entries of every connection.
public struct ConnectionTable {
    let established: BPFMap
    let fresh: BPFMap

    public init(root: PinRoot) throws(BPFError) {
        established = try BPFMap.open(pinned: root.shared(DP_MAP_CT))
        fresh = try BPFMap.open(pinned: root.shared(DP_MAP_CT_NEW))
    }

    /// Every entry, with its key and whether it is in dp_ct_new, from both tables.
    public func entries() throws(BPFError) -> [(key: dp_ct_key, entry: dp_ct_entry, new: Bool)] {
        var out: [(key: dp_ct_key, entry: dp_ct_entry, new: Bool)] = []
        for (map, new) in [(established, false), (fresh, true)] {
            for key in try map.keys(as: dp_ct_key.self) {
                if let e: dp_ct_entry = try map.lookup(key) { out.append((key, e, new)) }
            }
        }
        return out
    }

    /// Removes the connections (both entries) whose original entry `matches`; returns how many.
    public func remove(where matches: (dp_ct_entry) -> Bool) throws(BPFError) -> Int {
        var removed = 0
        for (key, e, _) in try entries() where e.reply == 0 && matches(e) {
            for map in [established, fresh] {
                try map.delete(key)
                try map.delete(e.to.reversed)
            }
            removed += 1
        }
        return removed
    }
}

extension dp_ct_entry {
    /// A NAT connection's entry (not the load balancer's).
    var isNAT: Bool { kind == UInt8(DP_CT_SNAT.rawValue) || kind == UInt8(DP_CT_DNAT.rawValue) }
    var isBalanced: Bool { kind == UInt8(DP_CT_LB.rawValue) }
}

extension dp_ct_key {
    /// The key of the packets that answer a packet leaving with this tuple (conntrack.h's
    /// ct_reverse): the other entry of its connection.
    var reversed: dp_ct_key {
        var r = dp_ct_key()
        (r.src, r.dst, r.sport, r.dport, r.proto, r.family) = (dst, src, dport, sport, proto, family)
        return r
    }
}
