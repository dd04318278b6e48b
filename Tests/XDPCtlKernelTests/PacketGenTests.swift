import CPacketGen
import Foundation
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore

/// The benchmark's traffic generator (Sources/CPacketGen) on a real veth pair: what it
/// says it sent is what the peer's XDP program saw, its pacing never runs ahead of the
/// rate, and its time limit stops it.
@Suite("Benchmark traffic generator", .serialized)
struct PacketGenTests {
    /// XDP frames the peer (xlbb) dropped so far, from `ethtool -S` in the namespace.
    static func peerDrops(_ lab: FIBNamespace) throws -> Int {
        let p = Process(), out = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["netns", "exec", lab.name, "ethtool", "-S", "xlbb"]
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return text.split(separator: "\n").filter { $0.contains("rx_queue_") && $0.contains("_xdp_drops") }
            .compactMap { Int($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) }.reduce(0, +)
    }

    /// Frames xlba transmitted so far: the generator's and any the kernel sends itself
    /// (IPv6 MLD reports and router solicitations after the link comes up).
    static func sentByLink(_ lab: FIBNamespace) throws -> Int {
        let p = Process(), out = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["-n", lab.name, "-s", "-j", "link", "show", "xlba"]
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let links = try JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        let tx = (links?.first?["stats64"] as? [String: Any])?["tx"] as? [String: Any]
        return tx?["packets"] as? Int ?? -1
    }

    /// Sends `frames` in turn out of xlba (XDP_DROP on its peer) and returns the report.
    static func send(_ lab: FIBNamespace, _ frames: [[UInt8]], count: UInt64, rate: UInt64 = 0, seconds: Double = 10) throws -> packetgen_report {
        final class Box: @unchecked Sendable { var report = packetgen_report(); var rc: Int32 = 0 }
        let box = Box()
        try lab.run {
            let fd = packetgen_open(Netns.ifindex(of: "xlba")!)
            guard fd >= 0 else { box.rc = fd; return }
            defer { close(fd) }
            box.rc = Array(frames.joined()).withUnsafeBufferPointer { data in
                packetgen_send(fd, data.baseAddress, frames.map { UInt32($0.count) }, UInt32(frames.count), count, rate, seconds, &box.report)
            }
        }
        #expect(box.rc == 0, "generator: \(String(cString: strerror(-box.rc)))")
        return box.report
    }

    static func withDropPeer(_ body: (FIBNamespace) throws -> Void) throws {
        let lab = try FIBNamespace()
        defer { lab.close() }
        let floor = try BPFObject(.xdpDrop, pinRoot: nil)
        var link: OwnedDescriptor?
        try lab.run { link = try XDPLink.hold(programFD: try floor.programFD("xdp_drop"), ifindex: Netns.ifindex(of: "xlbb")!, interface: "xlbb", mode: .native) }
        try withExtendedLifetime(link) { try body(lab) }
    }

    static let frames = (1...3).map { i in
        PacketBuilder().frame(PacketKey(src: IPAddress("10.201.0.\(i)")!, dst: IPAddress("10.201.0.99")!, proto: 17, srcPort: 40000, dstPort: 9))
    }

    @Test("every frame it reports sent reaches the peer's XDP program, and it stops at the count")
    func countsExactly() throws {
        try Self.withDropPeer { lab in
            let before = try Self.peerDrops(lab), linkBefore = try Self.sentByLink(lab)
            let report = try Self.send(lab, Self.frames, count: 3000)
            #expect(report.sent == 3000)
            // The peer's NAPI drains its ring after the send returns: wait for it, briefly.
            var seen = 0, linkSent = 0
            for _ in 0..<40 {
                seen = try Self.peerDrops(lab) - before
                linkSent = try Self.sentByLink(lab) - linkBefore
                if seen >= 3000 && seen == linkSent { break }
                usleep(50_000)
            }
            print("PacketGen: generator 3000, link sent \(linkSent), peer saw \(seen)")
            // The peer sees every frame the link sent; beyond the generator's 3,000 only
            // the kernel's own few (IPv6 control frames on a link just brought up).
            #expect(seen == linkSent)
            #expect(linkSent >= 3000 && linkSent <= 3004)
        }
    }

    @Test("paced, it never runs ahead of the rate, and the time limit stops an endless send")
    func pacesAndStops() throws {
        try Self.withDropPeer { lab in
            let report = try Self.send(lab, Self.frames, count: 1 << 40, rate: 20_000, seconds: 0.3)
            #expect(report.seconds >= 0.3 && report.seconds < 2)
            #expect(report.sent > 0 && Double(report.sent) <= 20_000 * report.seconds + 1)
            #expect(report.waits > 0)
        }
    }

    @Test("an interface that does not exist is an error, not a silent send")
    func badInterface() {
        #expect(packetgen_open(999_999) == -ENODEV)
    }
}
