import ArgumentParser
import CLibBPF
import CXDPCtlABI
import Foundation
import XDPCtlBPF
import XDPCtlCore
import XDPCtlKit
import XDPCtlWorkloads

/// The live-frames traffic generator and the XDP_DROP floor the veth part measures against.
extension Bench {
    func attachFloor(pin: String) throws {
        if let netns { try Netns.enter(netns) }
        guard let ifindex = Netns.ifindex(of: interface) else { throw ValidationError("--interface \(interface) does not exist here") }
        BPFLog.install(verbose: false)
        let floor = try BPFObject(.xdpDrop, pinRoot: nil)
        try XDPLink.attach(programFD: try floor.programFD("xdp_drop"), ifindex: ifindex, interface: interface, mode: .native, pinPath: pin)
    }

    /// --flow, parsed.
    func parsedFlow() throws -> (src: IPAddress, dst: IPAddress, port: UInt16) {
        let parts = flow.split(separator: ",").map(String.init)
        guard parts.count == 3, let src = IPAddress(parts[0]), let dst = IPAddress(parts[1]), let port = UInt16(parts[2]) else {
            throw ValidationError("--flow takes SRC,DST,DPORT, e.g. 10.201.0.1,10.201.0.2,9")
        }
        return (src, dst, port)
    }

    /// Sends `count` frames of --flow out of --interface and reports how long that took.
    func generate(_ count: Int) throws {
        let (src, dst, port) = try parsedFlow()
        if let netns { try Netns.enter(netns) }
        guard let ifindex = Netns.ifindex(of: interface) else { throw ValidationError("--interface \(interface) does not exist here") }
        BPFLog.install(verbose: false)
        let object: BPFObject, program: Int32
        if sources > 1 {
            guard src.family == .ipv4 else { throw ValidationError("--sources works with an IPv4 --flow") }
            object = try BPFObject(.xdpTxSources, pinRoot: nil)
            program = try object.programFD("xdp_tx_sources")
            // struct gen_sources: base, count, next
            try object.map("gen_sources").update(UInt32(0), (src.words[0], UInt32(sources), UInt64(0)))
        } else {
            object = try BPFObject(.xdpTx, pinRoot: nil)
            program = try object.programFD("xdp_tx")
        }
        let frame = PacketBuilder().frame(PacketKey(src: src, dst: dst, proto: 17, srcPort: 40000, dstPort: port))
        let start = ContinuousClock.now
        let perFrame = try TestRun.live(programFD: program, packet: frame, ifindex: ifindex, count: count)
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(JSONOutput.render(.obj(["frames": .int(count), "seconds": .number(String(format: "%.6f", seconds)),
                                      "generator_ns_per_frame": .int(Int(perFrame))])))
    }

    /// Sends `count` frames of --flow (--sources rotating the IPv4 source) out of
    /// --interface through AF_PACKET, one send() each (Glibc's module has neither
    /// sockaddr_ll nor sendmmsg); reports the frames the socket took and how long that
    /// took. A frame a full receiver refused (ENOBUFS) is sent again.
    func generatePackets(_ count: Int) throws {
        let (src, dst, port) = try parsedFlow()
        if let netns { try Netns.enter(netns) }
        guard let ifindex = Netns.ifindex(of: interface) else { throw ValidationError("--interface \(interface) does not exist here") }
        guard sources == 1 || src.family == .ipv4 else { throw ValidationError("--sources works with an IPv4 --flow") }
        let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("AF_PACKET socket: errno \(errno)") }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, 263 /* SOL_PACKET */, 20 /* PACKET_QDISC_BYPASS */, &one, 4)
        // struct sockaddr_ll: family, protocol, ifindex, hatype, pkttype, halen, addr[8].
        var address = [UInt8](repeating: 0, count: 20)
        withUnsafeBytes(of: UInt16(AF_PACKET)) { address.replaceSubrange(0..<2, with: $0) }
        withUnsafeBytes(of: ifindex) { address.replaceSubrange(4..<8, with: $0) }
        let bound = address.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), 20) }
        guard bound == 0 else { throw ValidationError("bind to \(interface): errno \(errno)") }
        let frames = (0..<max(1, sources)).map { i in
            PacketBuilder().frame(PacketKey(src: sources == 1 ? src : IPAddress(family: .ipv4, words: [src.words[0] &+ UInt32(i), 0, 0, 0]),
                                            dst: dst, proto: 17, srcPort: 40000, dstPort: port))
        }
        var sent = 0
        let start = ContinuousClock.now
        while sent < count {
            let frame = frames[sent % frames.count]
            let r = frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            if r < 0 {
                if errno == ENOBUFS || errno == EAGAIN || errno == EINTR { continue }
                throw ValidationError("send: errno \(errno)")
            }
            sent += 1
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(JSONOutput.render(.obj(["frames": .int(sent), "seconds": .number(String(format: "%.6f", seconds))])))
    }
}
