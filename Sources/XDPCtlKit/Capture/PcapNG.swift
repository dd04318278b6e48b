import SystemPackage

/// Writes pcapng (the IETF draft-ietf-opsawg-pcapng format): a section header, an
/// interface description per interface (its name, nanosecond timestamps), and an enhanced
/// packet block per packet with comments (opt_comment). Written here, not through
/// libpcap: libpcap 1.10 writes only pcap, whose records have no room for comments.
/// libpcap, tcpdump and tshark read it.
public struct PcapNGWriter {
    private let write: ([UInt8]) throws -> Void
    private var interfaces: [String: UInt32] = [:]
    private let snaplen: UInt32

    /// Writes the section header through `write`.
    public init(snaplen: Int, write: @escaping ([UInt8]) throws -> Void) throws {
        (self.snaplen, self.write) = (UInt32(snaplen), write)
        var body = Self.u32(0x1A2B_3C4D) + Self.u16(1) + Self.u16(0) + Self.u64(UInt64.max) // byte order, 1.0, length unknown
        body += Self.option(4, Array("xdpctl capture".utf8)) + Self.endOfOptions // shb_userappl
        try write(Self.block(0x0A0D_0D0A, body))
    }

    /// Appends a packet: `data` as captured (at most snaplen bytes) of a frame of
    /// `length`, at `timestampNs` (ns since the epoch), on `interface`, with `comments`.
    public mutating func append(interface: String, timestampNs: UInt64, data: ArraySlice<UInt8>, length: Int, comments: [String]) throws {
        let id: UInt32
        if let known = interfaces[interface] {
            id = known
        } else {
            id = UInt32(interfaces.count)
            interfaces[interface] = id
            // LINKTYPE_ETHERNET, snaplen, if_name, if_tsresol 9 (ns).
            let body = Self.u16(1) + Self.u16(0) + Self.u32(snaplen) + Self.option(2, Array(interface.utf8)) + Self.option(9, [9]) + Self.endOfOptions
            try write(Self.block(1, body))
        }
        var body = Self.u32(id) + Self.u32(UInt32(timestampNs >> 32)) + Self.u32(UInt32(truncatingIfNeeded: timestampNs))
        body += Self.u32(UInt32(data.count)) + Self.u32(UInt32(length)) + Self.padded(Array(data))
        for c in comments { body += Self.option(1, Array(c.utf8)) }
        try write(Self.block(6, body + (comments.isEmpty ? [] : Self.endOfOptions)))
    }

    private static func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
        let total = UInt32(12 + body.count)
        return u32(type) + u32(total) + body + u32(total)
    }

    private static func option(_ code: UInt16, _ value: [UInt8]) -> [UInt8] {
        u16(code) + u16(UInt16(value.count)) + padded(value)
    }

    private static let endOfOptions: [UInt8] = [0, 0, 0, 0]

    private static func padded(_ bytes: [UInt8]) -> [UInt8] {
        bytes + Array(repeating: 0, count: (4 - bytes.count % 4) % 4)
    }

    // Host byte order, as the section header's magic tells readers.
    private static func u16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
    private static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
    private static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
}
