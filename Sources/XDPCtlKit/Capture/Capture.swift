import CLibBPF
import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

/// What `xdpctl capture` asks the programs for.
public struct CaptureRequest: Sendable {
    /// Nil: every attached interface.
    public var interface: String?
    /// Verdict names (InterfaceStats.verdictNames); empty: all.
    public var verdicts: Set<String> = []
    /// Drop reason names (InterfaceStats.reasonNames, but "none"); empty: any.
    public var reasons: Set<String> = []
    /// A firewall rule, rate limit or load balancer of `interface`.
    public var rule: String?
    public var snaplen = maxSnaplen
    /// The most of a packet the programs copy.
    public static let maxSnaplen = Int(DP_CAPTURE_SNAP_MAX)
    /// Records a second per CPU, and at once.
    public var rate: UInt64 = 20_000
    public var burst: UInt64 = 2_000

    public init() {}
}

/// One captured packet, as the program left it.
public struct CapturedPacket: Sendable {
    /// CLOCK_REALTIME, ns.
    public var timestampNs: UInt64
    public var interface: String
    /// "xdp" or "tc".
    public var hook: String
    public var verdict: String
    /// Nil unless dropped.
    public var reason: String?
    /// "rule NAME", "default action", "limit NAME", "backend LB ADDRESS:PORT" (nil: none).
    public var decidedBy: String?
    public var length: Int
    public var data: [UInt8]

    /// The comment a pcapng record carries.
    public var comment: String {
        ([hook, verdict] + (reason.map { ["reason \($0)"] } ?? []) + (decidedBy.map { [$0] } ?? [])).joined(separator: " ")
    }
}

/// How a capture went: records the programs made, and the packets they matched but did
/// not record (over the rate bound, or the ring was full).
public struct CaptureSummary: Sendable {
    public var written = 0
    /// Records the filter expression or the load balancer's name left out.
    public var filteredOut = 0
    public var limited: UInt64 = 0
    public var lost: UInt64 = 0
}

extension Dataplane {
    /// Captures packets as the programs leave them until `each` returns false or `stop`
    /// returns true (asked every 100 ms); `started` is called once the programs record. Holds the capture lock; turns the programs'
    /// capture on for the request, and off again whatever ends it. Throws when nothing is
    /// applied, the names do not resolve, or another capture runs.
    public func capture(_ request: CaptureRequest, filter: PacketFilter?, started: () -> Void = {}, stop: () -> Bool,
                        each: (CapturedPacket) -> Bool) throws(DataplaneError) -> CaptureSummary {
        let state = try appliedState()
        let names = CaptureNames(state)
        var cfg = dp_capture_cfg()
        cfg.on = 1
        cfg.hooks = 0b11
        cfg.snaplen = UInt32(min(max(request.snaplen, 1), Int(DP_CAPTURE_SNAP_MAX)))
        (cfg.rate, cfg.burst) = (request.rate, max(request.burst, 1))
        cfg.verdicts = request.verdicts.isEmpty ? ~0 : Self.mask(request.verdicts, InterfaceStats.verdictNames)
        cfg.reasons = request.reasons.isEmpty ? ~0 : Self.mask(request.reasons, InterfaceStats.reasonNames)
        var backends: Set<UInt32>?
        if let name = request.interface {
            let s = try attached(name, in: state)
            cfg.ifindex = UInt32(bitPattern: s.ifindex)
            if let rule = request.rule {
                let decider = try names.decider(rule, on: s)
                (cfg.decider, cfg.decider_mask) = (decider.value, decider.mask)
                backends = decider.backends
            }
        } else if let rule = request.rule {
            throw .state("--rule \(rule): name the interface it is on with --interface")
        }

        let session = try CaptureSession(self, cfg)
        started()
        var summary = CaptureSummary()
        var going = true
        while going {
            if stop() { break }
            for bytes in session.poll(milliseconds: 100) where going {
                guard let packet = names.packet(bytes, offset: session.offset) else { continue }
                if let backends, let slot = packet.backendSlot, !backends.contains(slot) {
                    summary.filteredOut += 1
                    continue
                }
                if let filter, !filter.matches(packet.packet.data[...], length: packet.packet.length) {
                    summary.filteredOut += 1
                    continue
                }
                summary.written += 1
                going = each(packet.packet)
            }
        }
        (summary.limited, summary.lost) = session.finish()
        return summary
    }

    /// Whether the programs record packets now (the flag every packet checks).
    public var captureRunning: Bool {
        guard let flag = try? BPFMap.open(pinned: root.shared(DP_PIN_CAPTURE_ON)), let on: UInt32 = try? flag.lookup(UInt32(0)) else { return false }
        return on != 0
    }

    /// A capture killed outright (SIGKILL) leaves the programs recording into the ring.
    /// Unless a capture holds its lock, turns that off. Every apply does this.
    func endStaleCapture() {
        guard captureRunning, let lock = try? root.lockCapture(), let flag = try? BPFMap.open(pinned: root.shared(DP_PIN_CAPTURE_ON)) else { return }
        try? flag.update(UInt32(0), UInt32(0))
        withExtendedLifetime(lock) {}
    }

    private static func mask(_ chosen: Set<String>, _ names: [String]) -> UInt32 {
        names.enumerated().reduce(0) { chosen.contains($1.element) ? $0 | 1 << UInt32($1.offset) : $0 }
    }
}

/// The programs' capture, turned on for one command: holds the capture lock, writes the
/// filter, reads the ring buffer, and turns the capture off again (finish, or deinit).
final class CaptureSession {
    /// What the ring buffer's callback collects between polls.
    private final class Sink {
        var records: [[UInt8]] = []
    }

    private let lock: OwnedDescriptor
    private let flag, config, stats, ring: BPFMap
    private var cfg: dp_capture_cfg
    private let sink = Sink()
    private let buffer: OpaquePointer
    private let before: [dp_capture_stats]
    /// Add to a record's timestamp (the programs' CLOCK_MONOTONIC) for CLOCK_REALTIME.
    let offset: UInt64

    init(_ dataplane: Dataplane, _ cfg: dp_capture_cfg) throws(DataplaneError) {
        let root = dataplane.root
        do {
            lock = try root.lockCapture()
            (flag, config, stats, ring) = (try BPFMap.open(pinned: root.shared(DP_PIN_CAPTURE_ON)), try BPFMap.open(pinned: root.shared(DP_MAP_CAPTURE)),
                                           try BPFMap.open(pinned: root.shared(DP_MAP_CAPTURE_STATS)), try BPFMap.open(pinned: root.shared(DP_MAP_CAPTURE_RING)))
        } catch {
            throw .kernel(error)
        }
        guard let buffer = ring_buffer__new(ring.fd.raw, { context, data, size in
            guard let context, let data else { return 0 }
            Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue().records.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            return 0
        }, Unmanaged.passUnretained(sink).toOpaque(), nil) else {
            throw .kernel(BPFError(.openPin(root.shared(DP_MAP_CAPTURE_RING)), errno: errno))
        }
        self.buffer = buffer
        self.cfg = cfg
        before = (try? stats.lookupPerCPU(0, as: dp_capture_stats.self)) ?? []
        offset = Dataplane.now(CLOCK_REALTIME) &- Dataplane.now(CLOCK_MONOTONIC)
        // The filter first, then the flag the programs check.
        do {
            try config.update(UInt32(0), cfg)
            try flag.update(UInt32(0), UInt32(1))
        } catch {
            ring_buffer__free(buffer)
            throw .kernel(error)
        }
    }

    deinit {
        if cfg.on != 0 { _ = finish() }
        ring_buffer__free(buffer)
        withExtendedLifetime(lock) {}
    }

    /// Records that arrived, waiting up to `milliseconds` for the programs to wake this
    /// reader (they do once a quarter MiB waits: capture.h), then taking what is there.
    func poll(milliseconds: Int32) -> [[UInt8]] {
        _ = ring_buffer__poll(buffer, milliseconds)
        _ = ring_buffer__consume(buffer)
        defer { sink.records.removeAll(keepingCapacity: true) }
        return sink.records
    }

    /// Records already in the ring, without waiting.
    func consume() -> [[UInt8]] {
        _ = ring_buffer__consume(buffer)
        defer { sink.records.removeAll(keepingCapacity: true) }
        return sink.records
    }

    /// Turns the capture off; the packets matched but not recorded since it began (over
    /// the rate bound, lost to a full ring).
    func finish() -> (limited: UInt64, lost: UInt64) {
        cfg.on = 0
        try? flag.update(UInt32(0), UInt32(0))
        try? config.update(UInt32(0), cfg)
        var out: (limited: UInt64, lost: UInt64) = (0, 0)
        for (i, a) in ((try? stats.lookupPerCPU(0, as: dp_capture_stats.self)) ?? []).enumerated() {
            let b = i < before.count ? before[i] : dp_capture_stats()
            out.limited += a.limited &- b.limited
            out.lost += a.lost &- b.lost
        }
        return out
    }
}

/// Names for what the records number: interfaces by index; rules, limits and backends by
/// counter slot, per interface.
struct CaptureNames {
    private var interfaces: [UInt32: String] = [:]
    private var rules: [String: [UInt32: String]] = [:]
    private var limits: [String: [UInt32: String]] = [:]
    private var backends: [String: [UInt32: String]] = [:]

    init(_ state: DataplaneState) {
        for s in state.interfaces {
            interfaces[UInt32(bitPattern: s.ifindex)] = s.name
            rules[s.name] = Dictionary(s.slots.inOrder.map { ($0.slot, $0.name) }, uniquingKeysWith: { a, _ in a })
            limits[s.name] = Dictionary(s.limitSlots.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            // backendID: "LB|ADDRESS|PORT".
            backends[s.name] = Dictionary(s.backendSlots.map { id, slot in
                let parts = id.split(separator: "|", omittingEmptySubsequences: false)
                let text = parts.count == 3 ? "backend \(parts[0]) \(LoadBalancer.endpoint(String(parts[1]), Int(parts[2]) ?? 0))" : "backend \(id)"
                return (slot, text)
            }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// The programs' filter for a rule, limit or load balancer name on interface `s`: a
    /// decider and its mask, and for a load balancer the backend slots (the programs
    /// filter on the kind, the capture on the slots).
    func decider(_ name: String, on s: InterfaceState) throws(DataplaneError) -> (value: UInt32, mask: UInt32, backends: Set<UInt32>?) {
        let whole = DP_DECIDER_KIND | DP_DECIDER_SLOT
        if let slot = s.slots.byName[name] { return (DP_DECIDER_RULE | slot, whole, nil) }
        if let slot = s.limitSlots[name] { return (DP_DECIDER_LIMIT | slot, whole, nil) }
        let slots = s.backendSlots.filter { $0.key.hasPrefix("\(name)|") }.map(\.value)
        if !slots.isEmpty { return (DP_DECIDER_BACKEND, DP_DECIDER_KIND, Set(slots)) }
        throw .state("--rule \(name): no firewall rule, rate limit or load balancer of that name on \(s.name)")
    }

    /// A record decoded; nil when it is short.
    func packet(_ bytes: [UInt8], offset: UInt64) -> (packet: CapturedPacket, backendSlot: UInt32?)? {
        let header = MemoryLayout<dp_capture_rec>.offset(of: \dp_capture_rec.data)!
        guard bytes.count >= header else { return nil }
        let r = bytes.withUnsafeBytes { $0.loadUnaligned(as: dp_capture_rec.self) }
        let name = interfaces[r.ifindex] ?? "ifindex \(r.ifindex)"
        let slot = r.decider & DP_DECIDER_SLOT
        var by: String?
        var backendSlot: UInt32?
        switch r.decider & DP_DECIDER_KIND {
        case DP_DECIDER_RULE: by = rules[name]?[slot].map { "rule \($0)" } ?? (slot == 0 ? "default action" : "rule slot \(slot)")
        case DP_DECIDER_LIMIT: by = "limit \(limits[name]?[slot] ?? "slot \(slot)")"
        case DP_DECIDER_BACKEND: (by, backendSlot) = (backends[name]?[slot] ?? "backend slot \(slot)", slot)
        default: break
        }
        let verdicts = InterfaceStats.verdictNames, reasons = InterfaceStats.reasonNames
        let caplen = min(Int(r.caplen), bytes.count - header)
        let packet = CapturedPacket(timestampNs: r.ts_ns &+ offset, interface: name, hook: r.hook == DP_HOOK_TC.rawValue ? "tc" : "xdp",
                                    verdict: Int(r.verdict) < verdicts.count ? verdicts[Int(r.verdict)] : "verdict \(r.verdict)",
                                    reason: r.reason == 0 ? nil : Int(r.reason) < reasons.count ? reasons[Int(r.reason)] : "reason \(r.reason)",
                                    decidedBy: by, length: Int(r.len), data: Array(bytes[header..<header + caplen]))
        return (packet, backendSlot)
    }
}

extension CapturedPacket {
    /// One line for a terminal: time, interface, what happened, and the packet's
    /// addresses, protocol and ports (read from the frame; VLAN tags skipped).
    public var line: String {
        let seconds = timestampNs / 1_000_000_000, micros = timestampNs % 1_000_000_000 / 1000
        let time = "\(seconds).\(String(repeating: "0", count: 6 - String(micros).count))\(micros)"
        return "\(time) \(interface) \(comment) len \(length): \(Self.headers(data))"
    }

    /// A frame's addresses, protocol and ports, read from it (VLAN tags skipped).
    public static func headers(_ data: [UInt8]) -> String {
        var at = 12
        func u16(_ i: Int) -> Int? { i + 1 < data.count ? Int(data[i]) << 8 | Int(data[i + 1]) : nil }
        var type = u16(at)
        while type == 0x8100 || type == 0x88A8 { at += 4; type = u16(at) }
        let l3 = at + 2
        var src = "", dst = "", proto = 0, l4 = 0
        switch type {
        case 0x0800 where data.count >= l3 + 20:
            func v4(_ i: Int) -> String { data[i..<i + 4].map(String.init).joined(separator: ".") }
            (src, dst, proto, l4) = (v4(l3 + 12), v4(l3 + 16), Int(data[l3 + 9]), l3 + Int(data[l3] & 0x0F) * 4)
        case 0x86DD where data.count >= l3 + 40:
            func v6(_ i: Int) -> String {
                "\(IPAddress(family: .ipv6, words: (0..<4).map { w in data[i + w * 4..<i + w * 4 + 4].reduce(0) { $0 << 8 | UInt32($1) } }))"
            }
            (src, dst, proto, l4) = (v6(l3 + 8), v6(l3 + 24), Int(data[l3 + 6]), l3 + 40)
        case 0x0806:
            return "arp"
        default:
            return type.map { "ethertype 0x\(String($0, radix: 16))" } ?? "frame"
        }
        let name = [1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6"][proto] ?? "proto \(proto)"
        if (proto == 6 || proto == 17), let sport = u16(l4), let dport = u16(l4 + 2) {
            return "\(LoadBalancer.endpoint(src, sport)) > \(LoadBalancer.endpoint(dst, dport)) \(name)"
        }
        return "\(src) > \(dst) \(name)"
    }
}
