import XDPCtlCore

/// Builds test frames byte by byte: Ethernet, VLAN tags, IPv4 (with options and fragment
/// fields), IPv6 (with extension headers), TCP, UDP, ICMP. Lengths and IPv4 header
/// checksums are filled in; anything can be broken on purpose afterwards.
public struct PacketBuilder: Sendable {
    public var vlans: [UInt16] = []
    public var etherType: UInt16?

    public init(vlans: [UInt16] = [], etherType: UInt16? = nil) {
        self.vlans = vlans
        self.etherType = etherType
    }

    public enum L4: Sendable {
        case tcp(src: UInt16, dst: UInt16, dataOffset: UInt8 = 5, flags: UInt8 = 0x02)
        case udp(src: UInt16, dst: UInt16)
        case icmp(type: UInt8)
        case raw([UInt8])
    }

    public static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    public static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    public static func l4Bytes(_ l4: L4, payload: [UInt8]) -> (proto: UInt8, bytes: [UInt8]) {
        switch l4 {
        case .tcp(let s, let d, let off, let flags):
            var h = be16(s) + be16(d) + be32(1) + be32(0) + [off << 4, flags] + be16(65535) + [0, 0, 0, 0]
            h += [UInt8](repeating: 0, count: max(0, Int(off) * 4 - 20))
            return (6, h + payload)
        case .udp(let s, let d):
            return (17, be16(s) + be16(d) + be16(UInt16(8 + payload.count)) + [0, 0] + payload)
        case .icmp(let t):
            return (t == 128 ? 58 : 1, [t, 0, 0, 0, 0, 1, 0, 1] + payload)
        case .raw(let b):
            return (0, b)
        }
    }

    public func ethernet(_ type: UInt16, _ body: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = [0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]
        for (i, vid) in vlans.enumerated() {
            frame += Self.be16(i == 0 && vlans.count > 1 ? 0x88A8 : 0x8100) + Self.be16(vid)
        }
        return frame + Self.be16(etherType ?? type) + body
    }

    /// IPv4. `fragmentOffset` is in 8-byte units.
    public func ipv4(src: String, dst: String, _ l4: L4, proto: UInt8? = nil, options: [UInt8] = [], moreFragments: Bool = false,
              fragmentOffset: UInt16 = 0, id: UInt16 = 0x1234, payload: [UInt8] = Array(repeating: 0xAB, count: 16)) -> [UInt8] {
        let (p, body) = Self.l4Bytes(l4, payload: payload)
        let ihl = UInt8(5 + options.count / 4)
        var h: [UInt8] = [0x40 | ihl, 0] + Self.be16(UInt16(Int(ihl) * 4 + body.count)) + Self.be16(id)
        h += Self.be16((moreFragments ? 0x2000 : 0) | fragmentOffset) + [64, proto ?? p, 0, 0]
        h += Self.be32(IPAddress(src)!.words[0]) + Self.be32(IPAddress(dst)!.words[0]) + options
        var sum: UInt32 = 0
        for i in stride(from: 0, to: h.count, by: 2) { sum += UInt32(h[i]) << 8 | UInt32(h[i + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        h[10...11] = ArraySlice(Self.be16(~UInt16(sum)))
        return ethernet(0x0800, h + body)
    }

    /// IPv6 with extension headers given as (next-header value of the header, its bytes).
    public func ipv6(src: String, dst: String, _ l4: L4, proto: UInt8? = nil, extensions: [(UInt8, [UInt8])] = [],
              payload: [UInt8] = Array(repeating: 0xAB, count: 16)) -> [UInt8] {
        let (p, body) = Self.l4Bytes(l4, payload: payload)
        var chain: [UInt8] = []
        for (i, ext) in extensions.enumerated() {
            var bytes = ext.1
            bytes[0] = i + 1 < extensions.count ? extensions[i + 1].0 : (proto ?? p)
            chain += bytes
        }
        let first = extensions.first?.0 ?? (proto ?? p)
        var h: [UInt8] = [0x60, 0, 0, 0] + Self.be16(UInt16(chain.count + body.count)) + [first, 64]
        for a in [src, dst] { for w in IPAddress(a)!.words { h += Self.be32(w) } }
        return ethernet(0x86DD, h + chain + body)
    }

    /// An 8-byte hop-by-hop / destination options header (PadN).
    public static let options8: [UInt8] = [0, 0, 1, 4, 0, 0, 0, 0]
    /// A fragment header; `offset` in 8-byte units.
    public static func fragment(offset: UInt16, more: Bool, id: UInt32 = 7) -> [UInt8] {
        [0, 0] + be16(offset << 3 | (more ? 1 : 0)) + be32(id)
    }
}

extension PacketBuilder {
    /// A TCP/UDP/ICMP frame carrying `key` (portless TCP/UDP keys become non-first fragments).
    public func frame(_ key: PacketKey) -> [UInt8] {
        let l4: L4
        switch key.proto {
        case 6 where key.dstPort != nil: l4 = .tcp(src: key.srcPort!, dst: key.dstPort!)
        case 17 where key.dstPort != nil: l4 = .udp(src: key.srcPort!, dst: key.dstPort!)
        case 1, 58: l4 = .icmp(type: key.proto == 1 ? 8 : 128)
        default: l4 = .raw([UInt8](repeating: 0x55, count: 20))
        }
        let fragment = (key.proto == 6 || key.proto == 17) && key.dstPort == nil
        return key.family == .ipv4
            ? ipv4(src: key.src.description, dst: key.dst.description, l4, proto: key.proto, fragmentOffset: fragment ? 2 : 0)
            : ipv6(src: key.src.description, dst: key.dst.description, l4, proto: key.proto,
                   extensions: fragment ? [(UInt8(44), PacketBuilder.fragment(offset: 2, more: false))] : [])
    }
}
