import CLibBPF
import CXDPCtlABI
import XDPCtlBPF
import XDPCtlCore

extension Dataplane {
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

    /// Writes load balancers straight into a loaded program's maps, in generation `slot`
    /// (VIP slots 1, 2, ... and backend slots 1, 2, ... in config order; every backend of
    /// epoch `epoch`), with their reply translations. For tests and the benchmark: apply
    /// stages the same writes around its atomic swap. The firewall header must name `slot`.
    @discardableResult
    public static func installBalancers(_ lbs: [LoadBalancer], into object: BPFObject, slot: UInt32 = 1,
                                        epoch: UInt32 = 1) throws -> [String: UInt32] {
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
        let vips = try vipTable(tables), ring = try ringTable(tables)
        try object.map(DP_MAP_LB_VIPS).update(slot, vips.fd.raw)
        try object.map(DP_MAP_LB_RING).update(slot, ring.fd.raw)
        withExtendedLifetime((vips, ring)) {}
        let replies = try object.map(DP_MAP_LB_REPLY)
        for lb in lbs {
            for b in lb.backends {
                try replies.update(LoadBalancerCompiler.endpoint(b.address, b.port, lb.proto), LoadBalancerCompiler.endpoint(lb.vip, lb.port, lb.proto))
            }
        }
        try object.map(DP_MAP_LB_VPORTS).fill(LoadBalancerCompiler.portWords(LoadBalancerCompiler.vipPorts(lbs)))
        try object.map(DP_MAP_LB_RPORTS).fill(LoadBalancerCompiler.portWords(Set(lbs.flatMap { $0.backends.map(\.port) })))
        return backendSlots
    }
}
