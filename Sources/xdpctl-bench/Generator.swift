import ArgumentParser
import CPacketGen
import Foundation
import XDPCtlBPF
import XDPCtlCore
import XDPCtlKit
import XDPCtlWorkloads

/// The traffic generator (C in CPacketGen: AF_PACKET, qdisc bypassed, sendmmsg), its relay,
/// and the XDP_DROP floor the veth part measures against.
extension Bench {
    /// Attaches --attach-drop's program natively to --interface through a link pinned at
    /// `pin`: the trivial XDP_DROP, or with --relay-to the relay (bpf/bench/xdp_relay.bpf.c).
    func attachBenchProgram(pin: String) throws {
        let ifindex = try enterInterface()
        BPFLog.install(verbose: false)
        let object: BPFObject, fd: Int32
        if let target = relayTo {
            guard let targetIndex = Netns.ifindex(of: target) else { throw ValidationError("--relay-to \(target) does not exist here") }
            object = try BPFObject(.xdpRelay, pinRoot: nil)
            try object.map("relay_to").update(UInt32(0), UInt32(bitPattern: targetIndex))
            fd = try object.programFD("xdp_relay")
        } else {
            object = try BPFObject(.xdpDrop, pinRoot: nil)
            fd = try object.programFD("xdp_drop")
        }
        try withExtendedLifetime(object) {
            try XDPLink.attach(programFD: fd, ifindex: ifindex, interface: interface, mode: .native, pinPath: pin)
        }
    }

    /// Enters --netns and returns --interface's index there.
    func enterInterface() throws -> Int32 {
        if let netns { try Netns.enter(netns) }
        guard let ifindex = Netns.ifindex(of: interface) else { throw ValidationError("--interface \(interface) does not exist here") }
        return ifindex
    }

    /// The packets --send sends: --trace's, or --flow's with --sources rotating the IPv4
    /// source (and with --source-ports the source port).
    func generatorPackets() throws -> [PacketKey] {
        if let trace {
            let parts = trace.split(separator: ":")
            guard parts.count == 2, let profile = RuleProfile(rawValue: String(parts[0])), let n = Int(parts[1]), (1...200_000).contains(n) else {
                throw ValidationError("--trace takes PROFILE:RULES, e.g. acl:10000 (profiles acl, fw, ipc; 1 to 200000 rules)")
            }
            return RuleProfile.trace(profile.rules(count: n, seed: 42), count: tracePackets)
        }
        let parts = flow.split(separator: ",").map(String.init)
        guard parts.count == 3, let src = IPAddress(parts[0]), let dst = IPAddress(parts[1]), let port = UInt16(parts[2]), src.family == dst.family else {
            throw ValidationError("--flow takes SRC,DST,DPORT of one family, e.g. 10.201.0.1,10.201.0.2,9")
        }
        guard sources == 1 || src.family == .ipv4 else { throw ValidationError("--sources works with an IPv4 --flow") }
        return (0..<sources).map { (i: Int) -> PacketKey in
            let address = i == 0 ? src : IPAddress(family: .ipv4, words: [src.words[0] &+ UInt32(i), 0, 0, 0])
            let sourcePort: UInt16 = sourcePorts ? UInt16(1024 + i % 64512) : 40000
            return PacketKey(src: address, dst: dst, proto: 17, srcPort: sourcePort, dstPort: port)
        }
    }

    /// Sends up to `count` frames out of --interface (prebuilt, in turn), paced to --rate,
    /// for at most --seconds; prints what went out as JSON.
    func send(_ count: Int) throws {
        let frames = try generatorPackets().map(PacketBuilder().frame)
        let ifindex = try enterInterface()
        let fd = packetgen_open(ifindex)
        guard fd >= 0 else { throw ValidationError("AF_PACKET socket on \(interface): \(String(cString: strerror(-fd)))") }
        defer { close(fd) }
        var report = packetgen_report()
        let rc = Array(frames.joined()).withUnsafeBufferPointer { data in
            packetgen_send(fd, data.baseAddress, frames.map { UInt32($0.count) }, UInt32(frames.count), UInt64(count), UInt64(rate), seconds, &report)
        }
        guard rc == 0 else { throw ValidationError("sendmmsg on \(interface): \(String(cString: strerror(-rc)))") }
        print(JSONOutput.render(.obj([
            "frames": .int(Int(report.sent)), "seconds": .number(String(format: "%.6f", report.seconds)),
            "rate_pps": .int(Int(Double(report.sent) / max(report.seconds, 1e-9))),
            "distinct_frames": .int(frames.count), "refused": .int(Int(report.refused)),
        ])))
    }
}
