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
                continue
            }
            if prev.xdpMode != iface.xdpMode {
                out.append("~ \(iface.name): xdp_mode \(prev.xdpMode.rawValue) -> \(iface.xdpMode.rawValue)")
            }
            out += firewall(iface.name, prev.firewall, iface.firewall)
        }
        for iface in old?.interfaces ?? [] where !names.contains(iface.name) {
            out.append("- detach \(iface.name)")
        }
        return out
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
            let oldRules = Dictionary(a.rules.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
            let newNames = Set(b.rules.map(\.name))
            for (i, r) in b.rules.enumerated() {
                if let o = oldRules[r.name] {
                    if o != r { out.append("~ \(name): rule \"\(r.name)\" changed") }
                } else {
                    out.append("+ \(name): rule \"\(r.name)\" at position \(i + 1)")
                }
            }
            for r in a.rules where !newNames.contains(r.name) { out.append("- \(name): rule \"\(r.name)\"") }
            let keptOld = a.rules.map(\.name).filter(newNames.contains)
            let keptNew = b.rules.map(\.name).filter { oldRules[$0] != nil }
            if keptOld != keptNew { out.append("~ \(name): rules reordered") }
            return out
        }
    }
}
