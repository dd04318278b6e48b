import CLibBPF
import CXDPCtlABI
import XDPCtlBPF
import XDPCtlCore

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
