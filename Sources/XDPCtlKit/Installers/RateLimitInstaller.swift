import CLibBPF
import CXDPCtlABI
import XDPCtlBPF
import XDPCtlCore

/// The rate limits' part of an apply: their table, and fresh buckets and counters for
/// limits new in this apply.
struct RateLimitInstaller: Installer {
    let root: PinRoot

    func build(_ stage: InterfaceStage) throws(BPFError) -> [GenerationTable: BPFMap] {
        guard let limits = stage.plan.limits else { return [:] }
        return [.rateLimits: try Dataplane.limitTable(limits)]
    }

    /// Fresh rate-limit slots start with zero counters, a full bucket and no per-source
    /// buckets (a slot may have belonged to a limit removed earlier).
    func prepare(_ stage: InterfaceStage) throws(BPFError) {
        let fresh = stage.plan.freshLimitSlots
        guard !fresh.isEmpty else { return }
        let stats = try BPFMap.open(pinned: root.map(DP_MAP_RL_STATS, of: stage.name))
        let buckets = try BPFMap.open(pinned: root.map(DP_MAP_RL_BUCKETS, of: stage.name))
        for slot in fresh {
            try stats.updatePerCPU(slot, dp_rl_stats())
            try buckets.update(slot, dp_rl_bucket())
        }
        let freshSlots = Set(fresh)
        let sources = try BPFMap.open(pinned: root.map(DP_MAP_RL_SOURCES, of: stage.name))
        for key in try sources.keys(as: dp_rl_source_key.self) where freshSlots.contains(key.slot) {
            try sources.delete(key)
        }
    }
}

extension Dataplane {
    /// A dp_rl table holding `entries`.
    public static func limitTable(_ entries: [dp_rl_entry]) throws(BPFError) -> BPFMap {
        let map = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_rl_table", keySize: 4,
                                    valueSize: MemoryLayout<dp_rl_entry>.size, maxEntries: RateLimitCompiler.capacity + 1)
        try map.fill(entries)
        return map
    }
}
