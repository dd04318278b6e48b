import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

extension Dataplane {
    /// The connection tables of every interface with load balancers: established
    /// connections, then half-open flows; nil when nothing is applied under the pin root.
    public func conntrack() throws(DataplaneError) -> [ConnectionEntry]? {
        guard let state = try reportState() else { return nil }
        let nowNs = Self.monotonicNow()
        var out: [ConnectionEntry] = []
        for s in state.interfaces {
            guard s.summary?.balancers.isEmpty == false else { continue }
            let names = Dictionary(s.vipSlots.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
            do {
                let backends = try BPFMap.open(pinned: root.map(DP_MAP_LB_BACKENDS, of: s.name))
                for (map, established) in [(DP_MAP_LB_CT, true), (DP_MAP_LB_HALF, false)] {
                    let table = try BPFMap.open(pinned: root.map(map, of: s.name))
                    for key in try table.keys(as: dp_lb_flow.self) {
                        guard let conn: dp_lb_conn = try table.lookup(key) else { continue }
                        let b: dp_lb_backend? = try backends.lookup(conn.backend)
                        out.append(ConnectionEntry(
                            interface: s.name, loadBalancer: names[conn.vip] ?? "?", proto: IPProtocol(key.proto).description,
                            client: IPAddress(family: key.family, tuple: key.src), clientPort: key.sport,
                            vip: IPAddress(family: key.family, tuple: key.dst), vipPort: key.dport,
                            backend: b.map { IPAddress(family: $0.family, tuple: $0.addr) }, backendPort: b?.port ?? 0,
                            state: !established ? .halfOpen : (b?.epoch == conn.epoch && conn.epoch != 0 ? .established : .stale),
                            ageSeconds: nowNs >= conn.created_ns ? Double(nowNs - conn.created_ns) / 1e9 : 0))
                    }
                }
            } catch { throw .kernel(error) }
        }
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
        for s in state.interfaces where !s.natSlots.isEmpty {
            let names = Dictionary(s.natSlots.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
            let kinds = Dictionary((s.summary?.nat ?? []).map { ($0.name, $0.kind) }, uniquingKeysWith: { a, _ in a })
            let entries: [(key: dp_ct_key, entry: dp_ct_entry)]
            do { entries = try ConnectionTable(pinDirectory: root.interface(s.name)).entries() } catch { throw .kernel(error) }
            let byKey = Dictionary(entries.map { (Self.tupleID($0.key), $0.entry) }, uniquingKeysWith: { a, b in a.seen_ns >= b.seen_ns ? a : b })
            for (key, e) in entries where e.reply == 0 {
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
            do {
                removed += try ConnectionTable(pinDirectory: root.interface(s.name)).remove { e in
                    if let slot = slot ?? nil, e.rule != slot { return false }
                    guard let address else { return true }
                    return [e.to.src, e.to.dst].contains { IPAddress(family: e.to.family, tuple: $0) == address }
                }
            } catch { throw .kernel(error) }
        }
        return removed
    }

    static func monotonicNow() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
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
