/// Configs that are valid but almost surely not what the operator meant: they apply, and
/// validate and apply say why they look wrong (each a ConfigError naming the place).
public enum ConfigWarnings {
    public static func check(_ config: Config) -> [ConfigError] {
        var out: [ConfigError] = []
        for (i, iface) in config.interfaces.enumerated() {
            let at = "interfaces[\(i)]"
            for (j, rule) in (iface.firewall?.rules ?? []).enumerated() {
                out += mapped(rule.src, "\(at).firewall.rules[\(j)].src") + mapped(rule.dst, "\(at).firewall.rules[\(j)].dst")
            }
            for (j, limit) in iface.rateLimits.enumerated() {
                out += mapped(limit.src, "\(at).rate_limits[\(j)].src") + mapped(limit.dst, "\(at).rate_limits[\(j)].dst")
            }
            for (j, rule) in (iface.nat?.snat ?? []).enumerated() { out += mapped(rule.src, "\(at).nat.snat[\(j)].src") }
            for (j, lb) in iface.loadBalancers.enumerated() {
                let path = "\(at).load_balancers[\(j)]"
                if let kind = notUnicast(lb.vip) {
                    out.append(ConfigError(path: "\(path).vip", message: "\(lb.vip) is a \(kind) address; a VIP takes unicast traffic, so no client reaches it"))
                }
                for (k, b) in lb.backends.enumerated() where b.address == lb.vip {
                    out.append(ConfigError(path: "\(path).backends[\(k)].address", message: "\(b.address) is the VIP itself; packets sent to this backend come back to the load balancer"))
                }
            }
        }
        return out
    }

    /// IPv4-mapped IPv6 prefixes (::ffff:a.b.c.d) among `prefixes`: an IPv4 packet carries
    /// IPv4 addresses, and no IPv6 packet on the wire has a mapped one, so they match nothing.
    static func mapped(_ prefixes: [IPPrefix], _ path: String) -> [ConfigError] {
        prefixes.enumerated().compactMap { n, p in
            guard p.family == .ipv6, p.length >= 96, p.address.words[0] == 0, p.address.words[1] == 0, p.address.words[2] == 0xffff else { return nil }
            let v4 = IPAddress(family: .ipv4, words: [p.address.words[3], 0, 0, 0])
            return ConfigError(path: "\(path)[\(n)]", message: "\(p) is an IPv4-mapped IPv6 prefix, which matches no packet; write the IPv4 prefix \(v4)/\(p.length - 96)")
        }
    }

    /// "multicast" or "broadcast" for an address no VIP should have; nil for unicast.
    static func notUnicast(_ a: IPAddress) -> String? {
        if a.family == .ipv4 {
            if a.words[0] >> 28 == 0xE { return "multicast" }
            if a.words[0] == 0xFFFF_FFFF { return "broadcast" }
            return nil
        }
        return a.words[0] >> 24 == 0xFF ? "multicast" : nil
    }
}
