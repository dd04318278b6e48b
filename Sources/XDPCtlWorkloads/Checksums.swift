/// Internet checksums computed from scratch, to check the data path's incremental
/// updates: the IPv4 header checksum and the TCP/UDP checksum with its pseudo-header.
/// Frames as PacketBuilder makes them (no VLAN tags, no IPv6 extension headers).
public enum Checksums {
    static func sum(_ bytes: ArraySlice<UInt8>, into total: inout UInt32) {
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex {
            total += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.endIndex { total += UInt32(bytes[i]) << 8 }
    }

    static func fold(_ s: UInt32) -> UInt16 {
        var s = s
        while s > 0xFFFF { s = (s & 0xFFFF) + (s >> 16) }
        return UInt16(s)
    }

    /// Where the IP header, the L4 segment and the L4 checksum field sit, and the
    /// pseudo-header's sum; nil for frames that are not IPv4/IPv6 TCP/UDP.
    static func layout(_ f: [UInt8]) -> (l3: Int, l4: Int, csum: Int, pseudo: UInt32, udp: Bool, v4: Bool)? {
        let type = UInt16(f[12]) << 8 | UInt16(f[13])
        var pseudo: UInt32 = 0
        let l3 = 14, l4: Int, proto: UInt8, length: Int
        if type == 0x0800 {
            let ihl = Int(f[l3] & 0x0F) * 4
            l4 = l3 + ihl
            proto = f[l3 + 9]
            length = (Int(f[l3 + 2]) << 8 | Int(f[l3 + 3])) - ihl
            sum(f[(l3 + 12)..<(l3 + 20)], into: &pseudo)
        } else if type == 0x86DD {
            l4 = l3 + 40
            proto = f[l3 + 6]
            length = Int(f[l3 + 4]) << 8 | Int(f[l3 + 5])
            sum(f[(l3 + 8)..<(l3 + 40)], into: &pseudo)
        } else { return nil }
        guard proto == 6 || proto == 17 else { return nil }
        pseudo += UInt32(proto) + UInt32(length)
        return (l3, l4, l4 + (proto == 6 ? 16 : 6), pseudo, proto == 17, type == 0x0800)
    }

    /// The frame with its IPv4 header checksum and TCP/UDP checksum computed afresh.
    public static func filled(_ frame: [UInt8]) -> [UInt8] {
        var f = frame
        guard let l = layout(f) else { return f }
        if l.v4 {
            f[l.l3 + 10] = 0
            f[l.l3 + 11] = 0
            var s: UInt32 = 0
            sum(f[l.l3..<l.l4], into: &s)
            let c = ~fold(s)
            (f[l.l3 + 10], f[l.l3 + 11]) = (UInt8(c >> 8), UInt8(c & 0xFF))
        }
        f[l.csum] = 0
        f[l.csum + 1] = 0
        var s = l.pseudo
        sum(f[l.l4...], into: &s)
        var c = ~fold(s)
        if l.udp && c == 0 { c = 0xFFFF }
        (f[l.csum], f[l.csum + 1]) = (UInt8(c >> 8), UInt8(c & 0xFF))
        return f
    }

    /// True when the IPv4 header and the TCP/UDP checksum verify (an IPv4 UDP checksum of
    /// 0 means none).
    public static func valid(_ f: [UInt8]) -> Bool {
        guard let l = layout(f) else { return false }
        if l.v4 {
            var s: UInt32 = 0
            sum(f[l.l3..<l.l4], into: &s)
            if fold(s) != 0xFFFF { return false }
            if l.udp && f[l.csum] == 0 && f[l.csum + 1] == 0 { return true }
        }
        var s = l.pseudo
        sum(f[l.l4...], into: &s)
        return fold(s) == 0xFFFF
    }
}
