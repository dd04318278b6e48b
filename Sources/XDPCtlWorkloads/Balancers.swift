import CXDPCtlABI
import XDPCtlBPF
import XDPCtlCore
import XDPCtlKit

extension Dataplane {
    /// Writes load balancers straight into a loaded program's maps (VIP slots 1, 2, ...
    /// and backend slots 1, 2, ... in config order; every backend of epoch `epoch`), with
    /// their port filters, and returns the generation tables that hold them. For
    /// tests and the benchmark: apply stages the same writes around its atomic flip.
    public static func installBalancers(_ lbs: [LoadBalancer], into object: BPFObject,
                                        epoch: UInt32 = 1) throws -> (backendSlots: [String: UInt32], tables: [GenerationTable: BPFMap]) {
        let vipSlots = Dictionary(uniqueKeysWithValues: lbs.enumerated().map { ($1.name, UInt32($0 + 1)) })
        let ids = LoadBalancerCompiler.backendIDs(lbs)
        let backendSlots = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, UInt32($0 + 1)) })
        let tables = try LoadBalancerCompiler.compile(lbs, vipSlots: vipSlots, backendSlots: backendSlots)
        let backends = try object.map(DP_MAP_LB_BACKENDS)
        for (index, entry) in tables.backends {
            var e = entry
            e.epoch = epoch
            try backends.update(index, e)
        }
        try object.map(DP_MAP_LB_VFILTER).fill(LoadBalancerCompiler.filterWords(LoadBalancerCompiler.vipBits(lbs)))
        try object.map(DP_MAP_LB_RPORTS).fill(LoadBalancerCompiler.filterWords(Set(lbs.flatMap { $0.backends.map(\.port) })))
        return (backendSlots, try Dataplane.balancerTables(tables))
    }
}
