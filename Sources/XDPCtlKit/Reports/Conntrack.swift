import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

extension Dataplane {
    /// The load balancers' connections, from the shared connection table: one per
    /// connection, by its client's entry; nil when nothing is applied under the pin root.
    public func conntrack() throws(DataplaneError) -> [ConnectionEntry]? {
        guard let state = try reportState() else { return nil }
        let nowNs = Self.monotonicNow()
        var out: [ConnectionEntry] = []
        let balancing = state.interfaces.filter { $0.summary?.balancers.isEmpty == false }
        guard !balancing.isEmpty else { return out }
        do {
            let entries = try ConnectionTable(root: root).entries().filter { $0.entry.isBalanced && $0.entry.reply == 0 }
            for s in balancing {
                let names = Dictionary(s.vipSlots.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
                let backends = try BPFMap.open(pinned: root.map(DP_MAP_LB_BACKENDS, of: s.name))
                for (key, e, new) in entries where e.ifindex == UInt32(bitPattern: s.ifindex) {
                    let b: dp_lb_backend? = try backends.lookup(e.rule)
                    out.append(ConnectionEntry(
                        interface: s.name, loadBalancer: names[e.vip] ?? "?", proto: IPProtocol(key.proto).description,
                        client: IPAddress(family: key.family, tuple: key.src), clientPort: key.sport,
                        vip: IPAddress(family: key.family, tuple: key.dst), vipPort: key.dport,
                        backend: IPAddress(family: key.family, tuple: e.to.dst), backendPort: e.to.dport,
                        state: b?.epoch != e.epoch || e.epoch == 0 ? .stale : new ? .halfOpen : .established,
                        ageSeconds: nowNs >= e.created_ns ? Double(nowNs - e.created_ns) / 1e9 : 0))
                }
            }
        } catch { throw .kernel(error) }
        return out
    }
}

/// Which NAT connections `conntrack flush` ends: all, or those matching every filter given.
public struct NATFlushFilter: Sendable {
    public var interface: String?
    public var rule: String?
    /// An address either tuple of the connection holds.
    public var address: IPAddress?
    public init(interface: String? = nil, rule: String? = nil, address: IPAddress? = nil) {
        (self.interface, self.rule, self.address) = (interface, rule, address)
    }
}

extension Dataplane {
    /// The NAT connections of every interface with NAT rules, one per connection (its
    /// two entries together); nil when nothing is applied under the pin root.
    public func natConnections() throws(DataplaneError) -> [NATConnection]? {
        guard let state = try reportState() else { return nil }
        let now = Self.monotonicNow()
        var out: [NATConnection] = []
        let withNAT = state.interfaces.filter { !$0.natSlots.isEmpty }
        guard !withNAT.isEmpty else { return out }
        let entries: [(key: dp_ct_key, entry: dp_ct_entry, new: Bool)]
        do { entries = try ConnectionTable(root: root).entries().filter { $0.entry.isNAT } } catch { throw .kernel(error) }
        let byKey = Dictionary(entries.map { (Self.tupleID($0.key), $0.entry) }, uniquingKeysWith: { a, b in a.seen_ns >= b.seen_ns ? a : b })
        for s in withNAT {
            let names = Dictionary(s.natSlots.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
            let kinds = Dictionary((s.summary?.nat ?? []).map { ($0.name, $0.kind) }, uniquingKeysWith: { a, _ in a })
            for (key, e, _) in entries where e.reply == 0 && e.ifindex == UInt32(bitPattern: s.ifindex) {
                let replyKey = e.to.reversed
                let reply = byKey[Self.tupleID(replyKey)]
                let seen = max(e.seen_ns, reply?.seen_ns ?? 0)
                let expires = Double(Self.timeout(proto: key.proto, state: e.state)) - Double(now > seen ? now - seen : 0) / 1e9
                guard expires > 0 else { continue } // dead: the data path treats it as absent
                let rule = names[e.rule] ?? "?"
                out.append(NATConnection(
                    interface: s.name, rule: rule, kind: kinds[rule] ?? (e.kind == UInt8(DP_CT_SNAT.rawValue) ? "snat" : "dnat"),
                    proto: IPProtocol(key.proto).description,
                    original: Self.tuple(key), reply: Self.tuple(replyKey), state: Self.stateName(e.state),
                    ageSeconds: now >= e.created_ns ? Double(now - e.created_ns) / 1e9 : 0, expiresSeconds: expires,
                    packets: (e.packets, reply?.packets ?? 0), bytes: (e.bytes, reply?.bytes ?? 0)))
            }
        }
        return out.sorted { ($0.interface, $0.ageSeconds) < ($1.interface, $1.ageSeconds) }
    }

    /// Ends the NAT connections `filter` matches (both entries); returns how many.
    /// Their next packets find no connection: a new flow through SNAT gets a new
    /// mapping, a reply is passed untranslated.
    public func flushNAT(_ filter: NATFlushFilter) throws(DataplaneError) -> Int {
        guard let state = try reportState() else { return 0 }
        let lock = try lockRoot()
        defer { withExtendedLifetime(lock) {} }
        var removed = 0
        for s in state.interfaces where !s.natSlots.isEmpty && (filter.interface == nil || filter.interface == s.name) {
            let slot = filter.rule.map { s.natSlots[$0] }
            if case .some(nil) = slot { continue }
            let address = filter.address
            let ifindex = UInt32(bitPattern: s.ifindex)
            do {
                removed += try ConnectionTable(root: root).remove { e in
                    guard e.isNAT && e.ifindex == ifindex else { return false }
                    if let slot = slot ?? nil, e.rule != slot { return false }
                    guard let address else { return true }
                    return [e.to.src, e.to.dst].contains { IPAddress(family: e.to.family, tuple: $0) == address }
                }
            } catch { throw .kernel(error) }
        }
        return removed
    }

    static func monotonicNow() -> UInt64 { now(CLOCK_MONOTONIC) }

    /// A clock's time in ns: CLOCK_MONOTONIC as the programs read it, or CLOCK_REALTIME.
    public static func now(_ clock: clockid_t) -> UInt64 {
        var now = timespec()
        clock_gettime(clock, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    static func tuple(_ k: dp_ct_key) -> NATConnection.Tuple {
        .init(src: IPAddress(family: k.family, tuple: k.src), sport: k.sport, dst: IPAddress(family: k.family, tuple: k.dst), dport: k.dport)
    }

    static func tupleID(_ k: dp_ct_key) -> [UInt8] { withUnsafeBytes(of: k, Array.init) }

    static func stateName(_ s: UInt8) -> String {
        switch UInt32(s) {
        case DP_CT_NEW.rawValue: "new"
        case DP_CT_ESTABLISHED.rawValue: "established"
        case DP_CT_CLOSING.rawValue: "closing"
        case DP_CT_CLOSED.rawValue: "closed"
        default: "?"
        }
    }

    /// Seconds a connection in `state` lives idle (xdpctl_abi.h, DP_CT_TIMEOUT_*).
    public static func timeout(proto: UInt8, state: UInt8) -> Int {
        switch (IPProtocol(proto), UInt32(state)) {
        case (.tcp, DP_CT_ESTABLISHED.rawValue): Int(DP_CT_TIMEOUT_TCP_ESTABLISHED)
        case (.tcp, DP_CT_CLOSING.rawValue): Int(DP_CT_TIMEOUT_TCP_CLOSING)
        case (.tcp, DP_CT_CLOSED.rawValue): Int(DP_CT_TIMEOUT_TCP_CLOSED)
        case (.tcp, _): Int(DP_CT_TIMEOUT_TCP_NEW)
        case (.udp, DP_CT_NEW.rawValue): Int(DP_CT_TIMEOUT_UDP_NEW)
        case (.udp, _): Int(DP_CT_TIMEOUT_UDP_ESTABLISHED)
        default: Int(DP_CT_TIMEOUT_ICMP)
        }
    }
}
