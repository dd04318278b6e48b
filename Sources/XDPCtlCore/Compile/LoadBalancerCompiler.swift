import CXDPCtlABI

/// An interface's load balancers as the contents of one generation's tables: the VIP
/// hash, every VIP's Maglev table one after the other, and the backend entries (see the
/// load-balancer section of xdpctl_abi.h).
public struct LoadBalancerTables {
    public var vips: [(key: dp_lb_endpoint, value: dp_lb_vip)] = []
    /// Backend slots, VIP after VIP.
    public var ring: [UInt32] = []
    /// What each backend slot in use holds (its epoch is set by apply).
    public var backends: [UInt32: dp_lb_backend] = [:]
}

public enum LoadBalancerCompiler {
    /// A backend's identity across applies: it keeps its slot, and with it its
    /// connections and counters, while its load balancer's name, address and port stay.
    public static func backendID(_ lb: LoadBalancer, _ b: LoadBalancer.Backend) -> String {
        backendID(balancer: lb.name, address: "\(b.address)", port: b.port)
    }

    static func backendID(balancer: String, address: String, port: UInt16) -> String {
        "\(balancer)|\(address)|\(port)"
    }

    /// Whether backend `b` of `lb` takes new flows: active, and not held down by health
    /// checks (`isDown`, asked by backendID; a recorded down counts only for a balancer
    /// with a health check). Draining and down backends keep their connections.
    public static func takesNewFlows(_ lb: LoadBalancer, _ b: LoadBalancer.Backend, isDown: (String) -> Bool) -> Bool {
        b.state == .active && !(lb.healthCheck != nil && isDown(backendID(lb, b)))
    }

    public static func backendIDs(_ lbs: [LoadBalancer]) -> [String] {
        lbs.flatMap { lb in lb.backends.map { backendID(lb, $0) } }
    }

    /// `vipSlots` by load-balancer name, `backendSlots` by backendID; `down`: backend
    /// slots whose health checks failed, which take no new flows (as draining ones) in
    /// load balancers that have health checks (without, every backend counts as up);
    /// `cache`: Maglev tables built before, by load-balancer name.
    public static func compile(_ lbs: [LoadBalancer], vipSlots: [String: UInt32], backendSlots: [String: UInt32],
                               down: Set<UInt32> = [], cache: MaglevCache? = nil) throws(CapacityError) -> LoadBalancerTables {
        if let top = vipSlots.values.max(), top >= DP_LB_MAX_VIPS {
            throw CapacityError(message: "load balancers need counter slot \(top); at most \(DP_LB_MAX_VIPS - 1) fit on an interface (apply with fewer first)")
        }
        if let top = backendSlots.values.max(), top >= DP_LB_MAX_BACKENDS {
            throw CapacityError(message: "backends need slot \(top); at most \(DP_LB_MAX_BACKENDS - 1) fit on an interface (apply with fewer first)")
        }
        let takes = { (lb: LoadBalancer, b: LoadBalancer.Backend) in
            takesNewFlows(lb, b) { backendSlots[$0].map(down.contains) ?? false }
        }
        let total = lbs.reduce(0) { t, lb in t + (lb.backends.contains { takes(lb, $0) } ? lb.tableSize : 0) }
        guard total <= Int(DP_LB_MAX_RING) else {
            throw CapacityError(message: "the Maglev tables hold \(total) entries together; at most \(DP_LB_MAX_RING) fit on an interface (use smaller table_size values)")
        }
        var tables = LoadBalancerTables()
        tables.ring.reserveCapacity(total)
        cache?.keep(Set(lbs.map(\.name)))
        for lb in lbs {
            guard let vipSlot = vipSlots[lb.name] else { preconditionFailure("no slot for load balancer \(lb.name)") }
            let slots = lb.backends.map { b in
                guard let slot = backendSlots[backendID(lb, b)] else { preconditionFailure("no slot for backend \(backendID(lb, b))") }
                return slot
            }
            for (b, slot) in zip(lb.backends, slots) {
                var entry = dp_lb_backend()
                entry.addr = b.address.tuple
                entry.port = b.port
                entry.family = UInt8(b.address.family.rawValue)
                tables.backends[slot] = entry
            }
            // Draining and down backends keep their connections but take no new flows.
            let weighted = lb.backends.map { Maglev.Backend(key: $0.maglevKey, weight: takes(lb, $0) ? $0.weight : 0) }
            let table = cache?.table(lb.name, weighted, size: lb.tableSize) ?? Maglev.table(weighted, size: lb.tableSize)
            var vip = dp_lb_vip()
            vip.slot = vipSlot
            vip.flags = lb.forwarding == .dsr ? DP_LB_VIP_DSR : 0
            vip.ring_start = UInt32(tables.ring.count)
            vip.ring_size = UInt32(table.count)
            tables.ring += table.map { slots[Int($0)] }
            tables.vips.append((endpoint(lb.vip, lb.port, lb.proto), vip))
        }
        return tables
    }

    /// The bits `lbs`' VIPs (address and port) set in the interface's VIP filter.
    public static func vipBits(_ lbs: [LoadBalancer]) -> Set<UInt16> {
        Set(lbs.map { lb in
            let a = lb.vip.words
            return UInt16(dp_lb_vip_bit(a[0], a[1], a[2], a[3], UInt32(lb.port)))
        })
    }

    /// A filter's words (xdpctl_abi.h): bit b % 32 of word b / 32 set for each bit b.
    public static func filterWords(_ bits: Set<UInt16>) -> [UInt32] {
        var words = [UInt32](repeating: 0, count: Int(DP_LB_FILTER_WORDS))
        for b in bits { words[Int(b) / 32] |= 1 << (UInt32(b) % 32) }
        return words
    }

    /// The ports backends answer from, over every interface: the reply port filter.
    public static func replyPorts(_ config: Config) -> Set<UInt16> {
        Set(config.interfaces.flatMap { $0.loadBalancers.flatMap { $0.backends.map(\.port) } })
    }

    public static func endpoint(_ address: IPAddress, _ port: UInt16, _ proto: IPProtocol) -> dp_lb_endpoint {
        var e = dp_lb_endpoint()
        e.addr = address.tuple
        e.port = port
        e.proto = proto.number
        e.family = UInt8(address.family.rawValue)
        return e
    }
}

extension IPAddress {
    /// The four words as a C array field takes them.
    public var tuple: (UInt32, UInt32, UInt32, UInt32) { (words[0], words[1], words[2], words[3]) }

    public init(family: UInt8, tuple w: (UInt32, UInt32, UInt32, UInt32)) {
        self.init(family: family == 6 ? .ipv6 : .ipv4, words: [w.0, w.1, w.2, w.3])
    }
}
