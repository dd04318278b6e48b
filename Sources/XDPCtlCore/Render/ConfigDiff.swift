/// What applying `new` over `old` changes, one line per change, in the words of the config.
///   + something added    - something removed    ~ something changed
public enum ConfigDiff {
    public static func changes(from old: Config?, to new: Config) -> [String] {
        var out: [String] = []
        let before = Dictionary((old?.interfaces ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let names = Set(new.interfaces.map(\.name))
        for iface in new.interfaces {
            guard let prev = before[iface.name] else {
                out.append("+ attach \(iface.name) (xdp_mode \(iface.xdpMode.rawValue))")
                if let fw = iface.firewall {
                    out.append("+ \(iface.name): firewall with \(fw.rules.count) rule\(fw.rules.count == 1 ? "" : "s"), default \(fw.defaultAction.rawValue)")
                }
                out += iface.rateLimits.map { "+ \(iface.name): rate limit \"\($0.name)\"" }
                out += loadBalancers(iface.name, [], iface.loadBalancers)
                out += nat(iface.name, nil, iface.nat)
                continue
            }
            if prev.natFastPath != iface.natFastPath {
                out.append("~ \(iface.name): nat_fast_path \(prev.natFastPath.rawValue) -> \(iface.natFastPath.rawValue)")
            }
            if prev.xdpMode != iface.xdpMode {
                out.append("~ \(iface.name): xdp_mode \(prev.xdpMode.rawValue) -> \(iface.xdpMode.rawValue)")
            }
            out += firewall(iface.name, prev.firewall, iface.firewall)
            out += rateLimits(iface.name, prev.rateLimits, iface.rateLimits)
            out += loadBalancers(iface.name, prev.loadBalancers, iface.loadBalancers)
            out += nat(iface.name, prev.nat, iface.nat)
        }
        for iface in old?.interfaces ?? [] where !names.contains(iface.name) {
            out.append("- detach \(iface.name)")
        }
        return out
    }

    static func rateLimits(_ name: String, _ old: [RateLimit], _ new: [RateLimit]) -> [String] {
        namedList(name, "rate limit", old, new, name: \.name)
    }

    /// DNAT and SNAT rules added, removed, changed and reordered.
    static func nat(_ iface: String, _ old: NAT?, _ new: NAT?) -> [String] {
        namedList(iface, "DNAT rule", old?.dnat ?? [], new?.dnat ?? [], name: \.name)
            + namedList(iface, "SNAT rule", old?.snat ?? [], new?.snat ?? [], name: \.name)
    }

    /// Load balancers added and removed, and for each kept one, what changed down to its backends.
    static func loadBalancers(_ iface: String, _ old: [LoadBalancer], _ new: [LoadBalancer]) -> [String] {
        let before = Dictionary(old.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let names = Set(new.map(\.name))
        var out: [String] = []
        for lb in new {
            let at = "\(iface): load balancer \"\(lb.name)\""
            guard let o = before[lb.name] else {
                out.append("+ \(at) \(lb.vipEndpoint)/\(lb.proto), \(lb.backends.count) backend\(lb.backends.count == 1 ? "" : "s")")
                continue
            }
            if (o.vip, o.port, o.proto) != (lb.vip, lb.port, lb.proto) { out.append("~ \(at): VIP \(o.vipEndpoint)/\(o.proto) -> \(lb.vipEndpoint)/\(lb.proto)") }
            if o.tableSize != lb.tableSize { out.append("~ \(at): table_size \(o.tableSize) -> \(lb.tableSize)") }
            if o.forwarding != lb.forwarding { out.append("~ \(at): forwarding \(o.forwarding.rawValue) -> \(lb.forwarding.rawValue)") }
            if o.healthCheck != lb.healthCheck { out.append("~ \(at): health_check changed") }
            let oldBackends = Dictionary(o.backends.map { ($0.endpoint, $0) }, uniquingKeysWith: { a, _ in a })
            for b in lb.backends {
                guard let ob = oldBackends[b.endpoint] else { out.append("+ \(at): backend \(b.endpoint) weight \(b.weight) \(b.state.rawValue)"); continue }
                if ob.weight != b.weight { out.append("~ \(at): backend \(b.endpoint) weight \(ob.weight) -> \(b.weight)") }
                if ob.state != b.state { out.append("~ \(at): backend \(b.endpoint) \(ob.state.rawValue) -> \(b.state.rawValue)") }
            }
            let kept = Set(lb.backends.map(\.endpoint))
            out += o.backends.filter { !kept.contains($0.endpoint) }.map { "- \(at): backend \($0.endpoint)" }
        }
        out += old.filter { !names.contains($0.name) }.map { "- \(iface): load balancer \"\($0.name)\"" }
        return out
    }

    /// Added, removed, changed and reordered items of a list whose items have names.
    static func namedList<T: Equatable>(_ iface: String, _ what: String, _ old: [T], _ new: [T], name: (T) -> String) -> [String] {
        let before = Dictionary(old.map { (name($0), $0) }, uniquingKeysWith: { x, _ in x })
        let newNames = Set(new.map(name))
        var out: [String] = []
        for (i, item) in new.enumerated() {
            if let o = before[name(item)] {
                if o != item { out.append("~ \(iface): \(what) \"\(name(item))\" changed") }
            } else {
                out.append("+ \(iface): \(what) \"\(name(item))\" at position \(i + 1)")
            }
        }
        for item in old where !newNames.contains(name(item)) { out.append("- \(iface): \(what) \"\(name(item))\"") }
        if old.map(name).filter(newNames.contains) != new.map(name).filter({ before[$0] != nil }) {
            out.append("~ \(iface): \(what)s reordered")
        }
        return out
    }

    /// The changes between two stretches of one interface's rule list (names outside
    /// them being neither).
    public static func rules(_ iface: String, _ old: [FirewallRule], _ new: [FirewallRule]) -> [String] {
        namedList(iface, "rule", old, new, name: \.name)
    }

    static func firewall(_ name: String, _ old: Firewall?, _ new: Firewall?) -> [String] {
        switch (old, new) {
        case (nil, nil): return []
        case (nil, let fw?): return ["+ \(name): firewall with \(fw.rules.count) rules, default \(fw.defaultAction.rawValue)"]
        case (_?, nil): return ["- \(name): firewall (all traffic passes)"]
        case (let a?, let b?):
            var out: [String] = []
            if a.defaultAction != b.defaultAction {
                out.append("~ \(name): default_action \(a.defaultAction.rawValue) -> \(b.defaultAction.rawValue)")
            }
            out += namedList(name, "rule", a.rules, b.rules, name: \.name)
            return out
        }
    }
}
