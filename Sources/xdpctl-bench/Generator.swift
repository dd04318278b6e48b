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

    /// Sends `count` frames of --flow out of --interface and reports how long that took.
    func generate(_ count: Int) throws {
        let parts = flow.split(separator: ",").map(String.init)
        guard parts.count == 3, let src = IPAddress(parts[0]), let dst = IPAddress(parts[1]), let port = UInt16(parts[2]) else {
            throw ValidationError("--flow takes SRC,DST,DPORT, e.g. 10.201.0.1,10.201.0.2,9")
        }
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
}
