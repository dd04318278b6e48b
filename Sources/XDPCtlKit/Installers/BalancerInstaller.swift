import CLibBPF
import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

/// The load balancers' part of an apply: the VIP and Maglev tables; new backends' slots
/// (filled before any table names them) and removed ones' (retired after the flip); and
/// the VIP port filter, which holds both generations' ports while either may run.
struct BalancerInstaller: Installer {
    let root: PinRoot

    func build(_ stage: InterfaceStage) throws(BPFError) -> [GenerationTable: BPFMap] {
        guard let balancers = stage.plan.balancers else { return [:] }
        return try Dataplane.balancerTables(balancers)
    }

    /// Backends new in this apply get their slot filled (epoch: this generation) and their
    /// counters zeroed before any table names them; so do new VIPs' counters.
    func prepare(_ stage: InterfaceStage) throws(BPFError) {
        let plan = stage.plan
        try writeVipFilter(stage, plan.oldVipBits.union(plan.vipBits))
        guard let tables = plan.balancers else { return }
        let backends = try BPFMap.open(pinned: root.map(DP_MAP_LB_BACKENDS, of: stage.name))
        let backendStats = try BPFMap.open(pinned: root.map(DP_MAP_LB_BSTATS, of: stage.name))
        // A slot's health belongs to its backend: a new one starts up, never checked.
        let health = try? BPFMap.open(pinned: root.map(DP_MAP_LB_HEALTH, of: stage.name))
        for slot in plan.freshBackendSlots {
            var entry = tables.backends[slot]!
            entry.epoch = plan.epoch
            try backendStats.updatePerCPU(slot, dp_lb_stats())
            try health?.update(slot, dp_lb_health())
            try backends.update(slot, entry)
        }

        let vipStats = try BPFMap.open(pinned: root.map(DP_MAP_LB_VSTATS, of: stage.name))
        for slot in plan.freshVipSlots { try vipStats.updatePerCPU(slot, dp_lb_stats()) }
    }

    func undo(_ stage: InterfaceStage) {
        try? writeVipFilter(stage, stage.plan.oldVipBits)
    }

    /// The port filter narrows to the new ports; removed backends' slots get epoch 0, so
    /// their connections are balanced afresh. Backends of load balancers without health
    /// checks count as up: what earlier checks recorded of them goes.
    func retire(_ stage: InterfaceStage) throws(BPFError) {
        let plan = stage.plan
        if plan.oldVipBits != plan.vipBits { try writeVipFilter(stage, plan.vipBits) }
        if let health = try? BPFMap.open(pinned: root.map(DP_MAP_LB_HEALTH, of: stage.name)) {
            for lb in plan.config.loadBalancers where lb.healthCheck == nil {
                for b in lb.backends {
                    guard let slot = plan.slots.backends[LoadBalancerCompiler.backendID(lb, b)],
                          let e: dp_lb_health = try health.lookup(slot), e.checks != 0 else { continue }
                    try health.update(slot, dp_lb_health())
                }
            }
        }
        guard !plan.removedBackendSlots.isEmpty else { return }
        let backends = try BPFMap.open(pinned: root.map(DP_MAP_LB_BACKENDS, of: stage.name))
        for slot in plan.removedBackendSlots {
            guard var entry: dp_lb_backend = try backends.lookup(slot) else { continue }
            entry.epoch = 0
            try backends.update(slot, entry)
        }
    }

    /// Sets the interface's VIP filter to `bits` (nothing to do when it stays empty).
    func writeVipFilter(_ stage: InterfaceStage, _ bits: Set<UInt16>) throws(BPFError) {
        guard !(stage.plan.oldVipBits.isEmpty && stage.plan.vipBits.isEmpty) else { return }
        try BPFMap.open(pinned: root.map(DP_MAP_LB_VFILTER, of: stage.name)).fill(LoadBalancerCompiler.filterWords(bits))
    }
}

/// The reply port filter (dp_lb_rports, shared by every interface): the ports of the old
/// and the new backends while an apply runs, the new ones' after it.
struct ReplyPorts {
    var root: PinRoot

    func write(_ ports: Set<UInt16>) throws(BPFError) {
        let path = root.shared(DP_MAP_LB_RPORTS)
        // The map appears with the first program loaded; without it nothing is filtered.
        guard access(path, F_OK) == 0 else { return }
        try BPFMap.open(pinned: path).fill(LoadBalancerCompiler.filterWords(ports))
    }
}

extension Dataplane {
    /// The generation tables holding `tables`: the VIPs and their Maglev tables.
    public static func balancerTables(_ tables: LoadBalancerTables) throws(BPFError) -> [GenerationTable: BPFMap] {
        [.vips: try vipTable(tables), .ring: try ringTable(tables)]
    }

    /// A dp_lb_vips table holding `tables`' VIPs.
    static func vipTable(_ tables: LoadBalancerTables) throws(BPFError) -> BPFMap {
        let map = try BPFMap.create(type: BPF_MAP_TYPE_HASH, name: "dp_lb_vip_table", keySize: MemoryLayout<dp_lb_endpoint>.size,
                                    valueSize: MemoryLayout<dp_lb_vip>.size, maxEntries: Int(DP_LB_MAX_VIPS))
        for (key, value) in tables.vips { try map.update(key, value) }
        return map
    }

    /// A dp_lb_ring table holding `tables`' Maglev tables.
    static func ringTable(_ tables: LoadBalancerTables) throws(BPFError) -> BPFMap {
        let map = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_lb_ring_table", keySize: 4, valueSize: 4,
                                    maxEntries: max(1, tables.ring.count), flags: UInt32(BPF_F_INNER_MAP))
        try map.fill(tables.ring)
        return map
    }
}
