import CXDPCtlABI

/// What the data path would do with one packet on one interface (`xdpctl explain`): the
/// firewall rule that decides it, the rate limit that would charge it, and the load
/// balancer and backend that would take it. Worked out with the data path's own walks in
/// Swift (the compiled firewall table, the limits' match boxes in order, the Maglev table
/// and flow hash), so it says what the programs do, not what a second reading of the
/// rules would.
public struct Explanation: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        /// The interface has no firewall: everything is allowed.
        case noFirewall
        /// Rule `name`, at `index` in the rule list.
        case rule(name: String, index: Int, action: RuleAction)
        case defaultAction(RuleAction)
    }

    public var interface: String
    public var packet: PacketKey
    public var decision: Decision
    /// The first rate limit the packet matches (charged only when the firewall allows it).
    public var limit: String?
    /// The load balancer whose VIP and port the packet is to, and the backend a new flow
    /// would get (nil: none takes new flows).
    public var balancer: String?
    public var backend: String?

    public var allowed: Bool {
        switch decision {
        case .noFirewall: true
        case .rule(_, _, let action), .defaultAction(let action): action == .allow
        }
    }
}

/// Explains packets on one interface: its firewall compiled and its limits' boxes built
/// once, for many packets.
public struct Explainer {
    public let iface: InterfaceConfig
    private let table: FirewallTable?
    private let slots: [String: UInt32]
    private let limits: [dp_rl_entry]
    /// Each load balancer's Maglev table, by name.
    private let rings: [String: [UInt32]]

    /// `slots`: the firewall's rule slots (nil: numbered in order); `down`: backends
    /// (LoadBalancerCompiler.backendID) that health checks hold down.
    public init(_ iface: InterfaceConfig, slots: [String: UInt32]? = nil, down: Set<String> = []) throws(CapacityError) {
        self.iface = iface
        rings = Dictionary(uniqueKeysWithValues: iface.loadBalancers.map { lb in
            let weighted = lb.backends.map { b in
                Maglev.Backend(key: b.maglevKey, weight: LoadBalancerCompiler.takesNewFlows(lb, b, isDown: down.contains) ? b.weight : 0)
            }
            return (lb.name, Maglev.table(weighted, size: lb.tableSize))
        })
        let rules = iface.firewall?.rules ?? []
        let numbered = slots ?? Dictionary(uniqueKeysWithValues: rules.enumerated().map { ($1.name, UInt32($0 + 1)) })
        self.slots = numbered
        table = try iface.firewall.map { f throws(CapacityError) in try FirewallCompiler().compile(f, slots: numbered) }
        limits = try RateLimitCompiler.compile(iface.rateLimits, slots: Dictionary(uniqueKeysWithValues: iface.rateLimits.enumerated().map { ($1.name, UInt32($0)) }))
    }

    /// What the data path would do with `packet`, carrying TCP flags `tcpFlags`.
    public func explain(_ packet: PacketKey, tcpFlags: UInt8 = 0) -> Explanation {
        var out = Explanation(interface: iface.name, packet: packet, decision: .noFirewall)
        let key = packet.words
        if let firewall = iface.firewall, let table {
            let node = table.classify(key)
            let slot = table.nodes[node].slot
            let index = node == 0 ? nil : firewall.rules.firstIndex { slots[$0.name] == slot }
            out.decision = index.map { .rule(name: firewall.rules[$0].name, index: $0, action: firewall.rules[$0].action) }
                ?? .defaultAction(firewall.defaultAction)
        }
        if let e = limits.first(where: { tcpFlags & $0.tcp_flags_mask == $0.tcp_flags_value && $0.box.matches(key) }) {
            out.limit = iface.rateLimits[Int(e.slot)].name
        }
        if let lb = iface.loadBalancers.first(where: { $0.vip == packet.dst && packet.dstPort == $0.port && packet.proto == $0.proto.number }) {
            out.balancer = lb.name
            if let ring = rings[lb.name], !ring.isEmpty, let sport = packet.srcPort, let dport = packet.dstPort {
                let hash = Maglev.flowHash(source: packet.src.words, sourcePort: sport, destinationPort: dport)
                out.backend = lb.backends[Int(ring[Int(hash % UInt32(ring.count))])].endpoint
            }
        }
        return out
    }
}

extension dp_rl_entry {
    /// The entry's match box, as a firewall RULE node's.
    var box: dp_fw_node {
        var n = dp_fw_node()
        (n.lo, n.hi) = (lo, hi)
        return n
    }
}

extension Explanation {
    public var text: String {
        var out = "\(packet) on \(interface):\n"
        switch decision {
        case .noFirewall: out += "  firewall    none on \(interface): allowed\n"
        case .rule(let name, let index, let action): out += "  firewall    rule \"\(name)\" (number \(index + 1) in the list) decides: \(action)\n"
        case .defaultAction(let action): out += "  firewall    no rule matches; the default action decides: \(action)\n"
        }
        if !allowed {
            out += "  rate limit  not reached (the firewall drops it)\n"
        } else {
            out += "  rate limit  \(limit.map { "\"\($0)\" charges it" } ?? "none matches")\n"
        }
        if let balancer, allowed {
            out += "  balancer    \"\(balancer)\": \(backend.map { "a new flow goes to \($0)" } ?? "no backend takes new flows (dropped as no_backend)")\n"
        } else {
            out += "  balancer    \(balancer == nil ? "not to a VIP" : "not reached")\n"
        }
        return out
    }

    public var json: String {
        let firewall: JSONValue
        switch decision {
        case .noFirewall: firewall = .obj(["decided_by": .string("none"), "action": .string("allow")])
        case .rule(let name, let index, let action):
            firewall = .obj(["decided_by": .string("rule"), "rule": .string(name), "index": .int(index), "action": .string(action.rawValue)])
        case .defaultAction(let action): firewall = .obj(["decided_by": .string("default"), "action": .string(action.rawValue)])
        }
        return JSONOutput.render(.obj([
            "interface": .string(interface),
            "packet": .obj(["src": .string("\(packet.src)"), "dst": .string("\(packet.dst)"), "proto": .string("\(IPProtocol(packet.proto))"),
                            "sport": packet.srcPort.map { .int(Int($0)) } ?? .null, "dport": packet.dstPort.map { .int(Int($0)) } ?? .null]),
            "firewall": firewall,
            "rate_limit": allowed ? limit.map { .string($0) } ?? .null : .null,
            "load_balancer": allowed ? balancer.map { .obj(["name": .string($0), "backend": backend.map { .string($0) } ?? .null]) } ?? .null : .null,
        ]), indent: "  ") + "\n"
    }
}
