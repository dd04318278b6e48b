import CXDPCtlABI
import XDPCtlBPF
import XDPCtlCore

/// One packet of a replay: what the program did with it.
public struct ReplayedPacket: Sendable {
    /// 1-based, in the file's order.
    public var index: Int
    public var timestampNs: UInt64
    public var verdict: String
    public var reason: String?
    /// As CapturedPacket.decidedBy; nil also when the program's record was not found.
    public var decidedBy: String?
    public var input: [UInt8]
    /// The packet as the program left it.
    public var output: [UInt8]
    public var length: Int
}

/// Packets replayed, by verdict and by what decided them.
public struct ReplaySummary: Sendable {
    public var packets = 0
    public var verdicts: [String: Int] = [:]
    public var decidedBy: [String: Int] = [:]
}

extension Dataplane {
    /// Runs each packet `next` gives through the XDP program attached to `interface` (or
    /// pinned, in a private load) with BPF_PROG_TEST_RUN, arriving on that interface, and
    /// with the capture on to learn the verdict's reason and decider. The tables decide,
    /// and are changed as traffic changes them: counters count the packets, rate-limit
    /// buckets are charged, connections a SYN opens enter the table. Holds the capture
    /// lock.
    public func replay(interface: String, next: () throws(PcapReader.Failure) -> PcapReader.Packet?,
                       each: (ReplayedPacket) -> Void) throws(DataplaneError) -> ReplaySummary {
        let state = try appliedState()
        try enterRecordedNetns(state)
        let s = try attached(interface, in: state)
        let program: OwnedDescriptor
        do {
            program = attaches ? try XDPLink.program(pinPath: root.link(interface)) : try XDPLink.pinnedProgram(root.program(interface))
        } catch { throw .kernel(error) }
        let names = CaptureNames(state)
        var cfg = dp_capture_cfg()
        (cfg.on, cfg.ifindex, cfg.hooks, cfg.verdicts, cfg.reasons) = (1, UInt32(bitPattern: s.ifindex), 1 << DP_HOOK_XDP.rawValue, ~0, ~0)
        (cfg.decider, cfg.decider_mask, cfg.snaplen) = (0, 0, UInt32(DP_CAPTURE_SNAP_MAX))
        (cfg.rate, cfg.burst) = (1_000_000_000, 1_000_000) // replay's own packets are never limited
        let session = try CaptureSession(self, cfg)
        var summary = ReplaySummary()
        while true {
            let packet: PcapReader.Packet?
            do { packet = try next() } catch { throw .state("\(error)") }
            guard let packet else { break }
            let result: TestRun.Result
            do { result = try TestRun.run(programFD: program.raw, packet: packet.data, ingressIfindex: UInt32(bitPattern: s.ifindex)) } catch {
                throw .kernel(error)
            }
            // The program's record of this run: the one holding the packet as it left the
            // program (live traffic on the interface is recorded meanwhile too).
            let caplen = min(result.output.count, Int(DP_CAPTURE_SNAP_MAX))
            let record = session.consume().lazy.compactMap { names.packet($0, offset: session.offset)?.packet }
                .first { $0.data.count == caplen && $0.data[...] == result.output.prefix(caplen) }
            let verdicts = InterfaceStats.verdictNames
            let verdict = Int(result.returnValue) < verdicts.count ? verdicts[Int(result.returnValue)] : "verdict \(result.returnValue)"
            let replayed = ReplayedPacket(index: summary.packets + 1, timestampNs: packet.timestampNs, verdict: verdict,
                                          reason: record?.reason, decidedBy: record?.decidedBy, input: packet.data, output: result.output,
                                          length: packet.length)
            summary.packets += 1
            summary.verdicts[verdict, default: 0] += 1
            summary.decidedBy[replayed.decidedBy ?? "nothing", default: 0] += 1
            each(replayed)
        }
        _ = session.finish()
        return summary
    }
}
