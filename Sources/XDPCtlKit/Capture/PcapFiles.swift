import CPcapShims

/// A pcap or pcapng file of Ethernet frames, read through libpcap.
public final class PcapReader {
    /// A file libpcap cannot read, or a link type replay does not take.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public struct Packet: Sendable {
        /// Nanoseconds since the epoch.
        public var timestampNs: UInt64
        public var data: [UInt8]
        /// The frame's length on the wire (data may hold less).
        public var length: Int
    }

    private let reader: OpaquePointer
    private let path: String
    /// Packets read so far.
    public private(set) var count = 0

    public init(_ path: String) throws(Failure) {
        var err = [CChar](repeating: 0, count: 512)
        guard let r = xdpctl_pcap_reader_open(path, &err, err.count) else { throw Failure(description: "\(path): \(Self.text(err))") }
        (reader, self.path) = (r, path)
    }

    deinit { xdpctl_pcap_reader_close(reader) }

    /// The next packet; nil at the end. Throws on a damaged file, naming the packet.
    public func next() throws(Failure) -> Packet? {
        var ts: UInt64 = 0, caplen: UInt32 = 0, len: UInt32 = 0
        var data: UnsafePointer<UInt8>?
        var err = [CChar](repeating: 0, count: 512)
        switch xdpctl_pcap_reader_next(reader, &ts, &caplen, &len, &data, &err, err.count) {
        case 1:
            count += 1
            return Packet(timestampNs: ts, data: Array(UnsafeBufferPointer(start: data, count: Int(caplen))), length: Int(len))
        case 0:
            return nil
        default:
            throw Failure(description: "\(path): packet \(count + 1): \(Self.text(err))")
        }
    }

    static func text(_ err: [CChar]) -> String {
        String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A pcap file of Ethernet frames written through libpcap (pcap_dump).
public final class PcapWriter {
    private var writer: OpaquePointer?
    private let path: String

    public init(_ path: String, snaplen: Int = 262_144) throws(PcapReader.Failure) {
        var err = [CChar](repeating: 0, count: 512)
        guard let w = xdpctl_pcap_writer_open(path, Int32(snaplen), &err, err.count) else {
            throw PcapReader.Failure(description: "cannot write \(path): \(PcapReader.text(err))")
        }
        (writer, self.path) = (w, path)
    }

    public func write(_ data: [UInt8], length: Int, timestampNs: UInt64) {
        data.withUnsafeBufferPointer { xdpctl_pcap_writer_write(writer, timestampNs, $0.baseAddress, UInt32($0.count), UInt32(length)) }
    }

    /// Flushes and closes the file; throws when not all of it could be written.
    public func close() throws(PcapReader.Failure) {
        guard let w = writer else { return }
        writer = nil
        if xdpctl_pcap_writer_close(w) != 0 { throw PcapReader.Failure(description: "cannot write \(path): the data did not all reach it") }
    }

    deinit { if let w = writer { _ = xdpctl_pcap_writer_close(w) } }
}
