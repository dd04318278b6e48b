import ArgumentParser
import CLibBPF
import CXDPCtlABI
import Foundation
import XDPCtlBPF
import XDPCtlCore
import XDPCtlKit
import XDPCtlWorkloads

/// Program cost of the load balancer's paths. "non-VIP pass" is traffic to a port no VIP
/// uses, "non-VIP, VIP port" traffic to a VIP's port on another address (the VIP filter,
/// by address and port, stops both). They rewrite the frame, so each is run
/// through the restore_frame wrapper (the frame written back before every run, then a
/// tail call into the program); the wrapper's own cost, measured with XDP_DROP behind it
/// on the same frames, is taken out, and the direct XDP_DROP cost put back, so the rows
/// read like the firewall's. The FIB lookups resolve: scripts/bench.sh gives the
/// namespace the routes and neighbour entries of the addresses below.
extension Bench {
    enum BalancerPath: String, CaseIterable {
        case otherPort = "lb non-VIP pass", notForVIP = "lb non-VIP, VIP port"
        case established = "lb established", established6 = "lb established v6"
        case newFlow = "lb new flow (SYN)", reply = "lb reply"

        var verdict: dp_verdict { self == .notForVIP || self == .otherPort ? DP_VERDICT_PASS : DP_VERDICT_REDIRECT }
    }

    struct BalancerRow {
        var path: BalancerPath
        var ns: Double, floor: Double
        /// Connections the measured runs opened (new-flow rows).
        var newConnections = 0
    }

    static let balancers = [
        LoadBalancer(name: "web", vip: IPAddress("10.50.100.1")!, proto: .tcp, port: 80, backends: ["10.51.1.2", "10.51.1.3", "10.51.1.4"].map {
            .init(address: IPAddress($0)!, port: 8080) }),
        LoadBalancer(name: "web6", vip: IPAddress("fd50:100::1")!, proto: .tcp, port: 80, backends: ["fd51::2", "fd51::3"].map {
            .init(address: IPAddress($0)!, port: 8080) }),
    ]

    /// `frames` frames for a path (TCP: ACK, or SYN for new flows).
    func balancerFrames(_ path: BalancerPath) -> [[UInt8]] {
        let b = PacketBuilder()
        return (0..<frames).map { i in
            let port = UInt16(41000 + i)
            switch path {
            case .otherPort: return b.ipv4(src: "10.50.0.2", dst: "10.50.0.1", .tcp(src: port, dst: 22, flags: 0x10))
            case .notForVIP: return b.ipv4(src: "10.50.0.2", dst: "10.50.0.1", .tcp(src: port, dst: 80, flags: 0x10))
            case .established: return b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: port, dst: 80, flags: 0x10))
            case .established6: return b.ipv6(src: "fd50::2", dst: "fd50:100::1", .tcp(src: port, dst: 80, flags: 0x10))
            case .newFlow: return b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: port, dst: 80, flags: 0x02))
            case .reply: return b.ipv4(src: "10.51.1.2", dst: "10.50.0.2", .tcp(src: 8080, dst: port, flags: 0x10))
            }
        }
    }

    /// Replies (ACKs) from the backends of the IPv4 connections in `program`'s connection
    /// table: a backend's packet is translated only on a connection the balancer made.
    func replyFrames(_ program: BPFObject) throws -> [[UInt8]] {
        let b = PacketBuilder(), table = try program.map(DP_MAP_CT)
        var out: [[UInt8]] = []
        for key in try table.keys(as: dp_ct_key.self) where key.family == 4 && out.count < frames {
            guard let e: dp_ct_entry = try table.lookup(key), e.kind == UInt8(DP_CT_LB.rawValue), e.reply == 1 else { continue }
            out.append(b.ipv4(src: IPAddress(family: 4, tuple: key.src).description, dst: IPAddress(family: 4, tuple: key.dst).description,
                              .tcp(src: key.sport, dst: key.dport, flags: 0x10)))
        }
        return out
    }

    /// Measures every path; `hold` keeps a program attached while it is measured.
    func measureBalancer(floorFD: Int32, root: String, hold: (Int32, Int) throws -> OwnedDescriptor?) throws -> [BalancerRow] {
        mkdir(root, 0o700)
        // An interface with load balancers and no firewall.
        let program = try Dataplane.ingressProgram(pinRoot: root, table: try Dataplane.firewallTable(capacity: Int(DP_FW_MIN_NODES), nil))
        try GenerationMaps(program).install(try Dataplane.installBalancers(Self.balancers, into: program).tables)
        let programFD = try program.programFD(DP_PROG_XDP)

        /// A restore_frame wrapper in front of `target`, kept attached on hold slot `slot`.
        func wrapper(_ target: Int32, slot: Int) throws -> (object: BPFObject, fd: Int32, link: OwnedDescriptor?) {
            let object = try BPFObject(.restoreFrame, pinRoot: nil)
            try object.map("restore_target").update(UInt32(0), target)
            let fd = try object.programFD("restore_run")
            return (object, fd, try hold(fd, slot))
        }
        let ours = try wrapper(programFD, slot: 2), floorWrapped = try wrapper(floorFD, slot: 1)

        // With `vary`, the wrapper gives every run the next source address and port of a
        // count that goes on across frames and measurements: each SYN measured is a
        // 5-tuple never seen before, and opens a connection (it used to start again at 0
        // for every frame, so after the first the SYNs found their half-open entries).
        var flows: UInt64 = 0
        func mean(_ w: (object: BPFObject, fd: Int32, link: OwnedDescriptor?), _ frames: [[UInt8]], vary: Bool) throws -> Double {
            let state = try w.object.map("restore_frame")
            var total = 0.0
            for f in frames {
                // struct restore_frame: the frame's first 8 words, vary and pad, runs.
                let h = f.prefix(64).withUnsafeBytes { raw in (0..<8).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) } }
                try state.update(UInt32(0), (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], UInt64(vary ? 1 : 0), flows))
                total += Double(try TestRun.run(programFD: w.fd, packet: f, repeat: self.repeat).duration)
                if vary && w.fd == ours.fd { flows += UInt64(self.repeat) }
            }
            return total / Double(frames.count)
        }

        var rows: [BalancerRow] = []
        for path in BalancerPath.allCases {
            let frames = path == .reply ? try replyFrames(program) : balancerFrames(path)
            if path == .established || path == .established6 {
                // The handshake's SYN and ACK, once each, put every flow in the connection table.
                for f in frames {
                    var syn = f
                    syn[f[12] == 0x08 ? 14 + 20 + 13 : 14 + 40 + 13] = 0x02
                    _ = try TestRun.run(programFD: programFD, packet: syn)
                    _ = try TestRun.run(programFD: programFD, packet: f)
                }
            }
            let check = try TestRun.run(programFD: programFD, packet: frames[0])
            guard check.returnValue == path.verdict.rawValue else {
                throw ValidationError("\(path.rawValue): the program returned \(check.returnValue), not \(path.verdict.rawValue); the load-balancer rows need the routes and neighbour entries scripts/bench.sh sets up (--netns)")
            }
            let vary = path == .newFlow
            var wrapped: [Double] = [], wrappedFloor: [Double] = [], direct: [Double] = []
            for run in -1..<runs {
                let sample = (try mean(ours, frames, vary: vary), try mean(floorWrapped, frames, vary: vary), try self.mean(floorFD, frames))
                if run < 0 { continue }
                wrapped.append(sample.0)
                wrappedFloor.append(sample.1)
                direct.append(sample.2)
            }
            rows.append(BalancerRow(path: path, ns: Self.median(wrapped) - Self.median(wrappedFloor) + Self.median(direct), floor: Self.median(direct),
                                    newConnections: vary ? Int(flows) : 0))
            FileOutput.standardError.write("measured \(path.rawValue)\n")
        }
        withExtendedLifetime((ours, floorWrapped, program)) {}
        return rows
    }

    func renderBalancer(_ rows: [BalancerRow]) -> String {
        var out = "path                  ns/pkt  XDP_DROP  ÷XDP_DROP  net of XDP_DROP\n"
        for r in rows {
            out += (r.path.rawValue as NSString).padding(toLength: 20, withPad: " ", startingAt: 0)
                + String(format: "  %6.1f  %8.1f  %8.2fx  %15.1f\n", r.ns, r.floor, r.ns / r.floor, r.ns - r.floor)
        }
        return out + "(medians of \(runs) runs of \(frames) frames × \(self.repeat) repeats, through a wrapper that restores each frame; the wrapper's own cost is taken out. New flows: every SYN measured a 5-tuple never seen before, \(rows.map(\.newConnections).reduce(0, +)) connections opened in all, each two entries into a table of \(DP_CT_NEW_MAX / 2) new connections)"
    }
}
