
extension Maglev {
    /// The data path's flow hash (lb_hash in bpf/lib/lb.h): MurmurHash3-style over the
    /// source address words and the ports. A flow goes to table entry hash % size, so
    /// this says which backend a new flow gets, without sending it.
    public static func flowHash(source: [UInt32], sourcePort: UInt16, destinationPort: UInt16) -> UInt32 {
        func mix(_ h: UInt32, _ k: UInt32) -> UInt32 {
            var k = k &* 0xcc9e_2d51
            k = k << 15 | k >> 17
            var h = h ^ (k &* 0x1b87_3593)
            h = h << 13 | h >> 19
            return h &* 5 &+ 0xe654_6b64
        }
        var h: UInt32 = 0x78_6470
        for w in source { h = mix(h, w) }
        h = mix(h, UInt32(sourcePort) << 16 | UInt32(destinationPort))
        h ^= h >> 16
        h = h &* 0x85eb_ca6b
        h ^= h >> 13
        h = h &* 0xc2b2_ae35
        return h ^ (h >> 16)
    }
}
