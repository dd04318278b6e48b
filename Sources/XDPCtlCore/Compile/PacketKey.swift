import CXDPCtlABI

/// What the firewall sees of a packet: the classification key of xdpctl_abi.h.
public struct PacketKey: Sendable, Hashable, CustomStringConvertible {
    public var src: IPAddress
    public var dst: IPAddress
    public var proto: UInt8
    /// nil when the packet carries no ports (not TCP/UDP, or a non-first fragment).
    public var srcPort: UInt16?
    public var dstPort: UInt16?

    public init(src: IPAddress, dst: IPAddress, proto: UInt8, srcPort: UInt16? = nil, dstPort: UInt16? = nil) {
        precondition(src.family == dst.family)
        self.src = src
        self.dst = dst
        self.proto = proto
        self.srcPort = srcPort
        self.dstPort = dstPort
    }

    public var family: AddressFamily { src.family }

    /// The DP_FW_NFIELDS words, in the order and byte order the BPF program builds them.
    public var words: [UInt32] {
        var w = src.words + dst.words
        w.append(srcPort.map(UInt32.init) ?? DP_FW_NO_PORT)
        w.append(dstPort.map(UInt32.init) ?? DP_FW_NO_PORT)
        w.append(UInt32(proto))
        w.append(UInt32(family.rawValue))
        return w
    }

    public var description: String {
        "\(IPProtocol(proto)) \(src)\(srcPort.map { ":\($0)" } ?? "") -> \(dst)\(dstPort.map { ":\($0)" } ?? "")"
    }
}
