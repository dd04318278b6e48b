import CPcapShims

/// A pcap filter expression (tcpdump's syntax), compiled by libpcap for Ethernet frames
/// and run on each captured frame in user space.
public final class PacketFilter: @unchecked Sendable {
    private let filter: OpaquePointer

    /// An expression libpcap refused, and why.
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Throws the expression's error, as libpcap words it.
    public init(_ expression: String, snaplen: Int) throws(Invalid) {
        var err = [CChar](repeating: 0, count: 256)
        guard let f = xdpctl_pcap_filter_new(expression, Int32(snaplen), &err, err.count) else {
            let why = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw Invalid(description: "filter expression \"\(expression)\": \(why)")
        }
        filter = f
    }

    deinit { xdpctl_pcap_filter_free(filter) }

    /// Whether the frame (`data` of a frame of `length` bytes) passes.
    public func matches(_ data: ArraySlice<UInt8>, length: Int) -> Bool {
        data.withUnsafeBufferPointer { xdpctl_pcap_filter_matches(filter, $0.baseAddress, UInt32($0.count), UInt32(length)) != 0 }
    }
}
