/// Decoding the firewall and rate-limit sections of an interface.
extension ConfigReader {
    func firewall(_ value: JSONValue, _ path: JSONPath) -> Firewall? {
        guard let f = fields(value, path, allowed: ["default_action", "rules"]) else { return nil }
        let def = f["default_action"].map { choice($0, f.at("default_action"), RuleAction.self) } ?? .allow
        let rules = rules(f["rules"], f.at("rules"))
        if let rules { unique(rules.map(\.name), f.at("rules"), key: "name", what: "rule") }
        guard let def, let rules else { return nil }
        return Firewall(defaultAction: def, rules: rules)
    }

    /// The match fields firewall rules and rate limits share.
    struct Match {
        var src: [IPPrefix], dst: [IPPrefix], proto: IPProtocol?, srcPorts: [PortRange], dstPorts: [PortRange]
    }
    static let matchKeys = ["src", "dst", "proto", "src_ports", "dst_ports"]
    static let ruleKeys = ["name", "action"] + matchKeys

    func match(_ f: Fields) -> Match? {
        let src = list(f["src"], f.at("src"), nonEmpty: true, what: "prefixes", prefix)
        let dst = list(f["dst"], f.at("dst"), nonEmpty: true, what: "prefixes", prefix)
        let proto = f["proto"].map { self.proto($0, f.at("proto")) }
        let sports = list(f["src_ports"], f.at("src_ports"), nonEmpty: true, what: "ports", portRange)
        let dports = list(f["dst_ports"], f.at("dst_ports"), nonEmpty: true, what: "ports", portRange)
        guard let src, let dst, let sports, let dports else { return nil }
        if case .some(nil) = proto { return nil }
        let p = proto ?? nil
        if !(sports.isEmpty && dports.isEmpty) && !(p?.hasPorts ?? false) {
            let key = sports.isEmpty ? "dst_ports" : "src_ports"
            fail(f.at(key), "ports need \"proto\": \"tcp\" or \"udp\" in the same rule (found \(p.map { "\"\($0)\"" } ?? "no proto"))")
            return nil
        }
        if !src.isEmpty && !dst.isEmpty && !src.contains(where: { s in dst.contains { $0.family == s.family } }) {
            fail(f.at("dst"), "src holds only \(src[0].family == .ipv4 ? "IPv4" : "IPv6") prefixes and dst only \(dst[0].family == .ipv4 ? "IPv4" : "IPv6") ones; the rule could never match")
            return nil
        }
        return Match(src: src, dst: dst, proto: p, srcPorts: sports, dstPorts: dports)
    }

    func rule(_ value: JSONValue, _ path: JSONPath) -> FirewallRule? {
        guard let f = fields(value, path, allowed: Self.ruleKeys, required: ["name", "action"]) else { return nil }
        let n = name(f["name"], f.at("name"))
        let action = f["action"].map { choice($0, f.at("action"), RuleAction.self) } ?? nil
        guard let m = match(f), let n, let action else { return nil }
        return FirewallRule(name: n, action: action, src: m.src, dst: m.dst, proto: m.proto, srcPorts: m.srcPorts, dstPorts: m.dstPorts)
    }

    /// A firewall's rules; a long list's second half is read on another core.
    func rules(_ value: JSONValue?, _ path: JSONPath) -> [FirewallRule]? {
        guard case .array(let items)? = value, items.count >= 20_000 else { return list(value, path, what: "rules", rule) }
        let half = items.count / 2
        let later = Concurrently { () -> (rules: [FirewallRule?], errors: [ConfigError]) in
            let reader = ConfigReader()
            return ((half..<items.count).map { reader.rule(items[$0], path.index($0)) }, reader.errors)
        }
        let first = (0..<half).map { rule(items[$0], path.index($0)) }
        let (second, errors) = later.value
        self.errors += errors
        let all = first + second
        return all.contains { $0 == nil } ? nil : all.map { $0! }
    }

    func rateLimit(_ value: JSONValue, _ path: JSONPath) -> RateLimit? {
        let keys = ["name", "tcp_flags", "per", "packets_per_second", "burst_packets", "bytes_per_second", "burst_bytes",
                    "source_ipv4_prefix", "source_ipv6_prefix"]
        guard let f = fields(value, path, allowed: keys + Self.matchKeys, required: ["name", "per"]) else { return nil }
        let n = name(f["name"], f.at("name"))
        let flags = list(f["tcp_flags"], f.at("tcp_flags"), nonEmpty: true, what: "TCP flags") { v, p in self.choice(v, p, TCPFlag.self) }
        let per = f["per"].map { choice($0, f.at("per"), RateLimit.Scope.self) } ?? nil
        let rate = { (key: String) -> UInt64?? in
            f[key].map { self.integer($0, f.at(key), in: 1...UInt64(1) << 40, expected: "a whole number from 1 to 2^40") }
        }
        let pps = rate("packets_per_second"), bp = rate("burst_packets"), bps = rate("bytes_per_second"), bb = rate("burst_bytes")
        let prefix = { (key: String, bits: UInt64) -> UInt64?? in
            f[key].map { self.integer($0, f.at(key), in: 1...bits, expected: "a prefix length from 1 to \(bits)") }
        }
        let v4 = prefix("source_ipv4_prefix", 32), v6 = prefix("source_ipv6_prefix", 128)
        guard let m = match(f), let n, let flags, let per else { return nil }
        for r in [pps, bp, bps, bb, v4, v6] { if case .some(nil) = r { return nil } }
        if per != .source, v4 != nil || v6 != nil {
            fail(f.at(v4 != nil ? "source_ipv4_prefix" : "source_ipv6_prefix"), "a source prefix needs \"per\": \"source\"")
            return nil
        }
        if pps == nil && bps == nil {
            fail(path, "no rate; expected \"packets_per_second\" or \"bytes_per_second\"")
            return nil
        }
        if (bp != nil && pps == nil) || (bb != nil && bps == nil) {
            fail(path.key(bp != nil && pps == nil ? "burst_packets" : "burst_bytes"), "a burst needs its rate (\"packets_per_second\" or \"bytes_per_second\")")
            return nil
        }
        if !flags.isEmpty && m.proto != .tcp {
            fail(f.at("tcp_flags"), "tcp_flags need \"proto\": \"tcp\"")
            return nil
        }
        return RateLimit(name: n, proto: m.proto, src: m.src, dst: m.dst, srcPorts: m.srcPorts, dstPorts: m.dstPorts,
                         tcpFlags: flags, per: per, packetsPerSecond: pps ?? nil, burstPackets: bp ?? nil,
                         bytesPerSecond: bps ?? nil, burstBytes: bb ?? nil,
                         sourceIPv4Prefix: Int((v4 ?? nil) ?? 32), sourceIPv6Prefix: Int((v6 ?? nil) ?? 128))
    }
}
