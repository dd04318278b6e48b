import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

extension Dataplane {
    /// The connection tables of every interface with load balancers: established
    /// connections, then half-open flows; nil when nothing is applied under the pin root.
    public func conntrack() throws(DataplaneError) -> [ConnectionEntry]? {
        guard let state = try reportState() else { return nil }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nowNs = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
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
