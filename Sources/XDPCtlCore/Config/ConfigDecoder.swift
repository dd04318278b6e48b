/// Turns a JSON document into a validated `Config`, collecting every error with its path.
public enum ConfigDecoder {
    public static func decode(_ text: String) throws(ConfigErrors) -> Config {
        try decode(bytes: Array(text.utf8))
    }

    public static func decode(bytes: [UInt8]) throws(ConfigErrors) -> Config {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw ConfigErrors(errors: [ConfigError(path: "", message: "not valid JSON: \(error)")])
        }
        let reader = ConfigReader()
        let config = reader.config(document)
        if let config, reader.errors.isEmpty { return config }
        throw ConfigErrors(errors: reader.errors)
    }
}

extension ConfigDecoder {
    /// A JSON list of firewall rules, checked as in a config file (names unique among them).
    static func rules(bytes: [UInt8]) throws(ConfigErrors) -> [FirewallRule] {
        let document: JSONValue
        do { document = try JSONParser.parse(bytes) } catch {
            throw ConfigErrors(errors: [ConfigError(path: "", message: "not valid JSON: \(error)")])
        }
        let reader = ConfigReader()
        let rules = reader.list(document, .root, what: "rules", reader.rule)
        if let rules { reader.unique(rules.map(\.name), .root, key: "name", what: "rule") }
        if let rules, reader.errors.isEmpty { return rules }
        throw ConfigErrors(errors: reader.errors)
    }
}

extension ConfigReader {
    // MARK: document

    func config(_ doc: JSONValue) -> Config? {
        guard let f = fields(doc, .root, allowed: ["version", "interfaces"], required: ["version", "interfaces"]) else { return nil }
        if let v = f["version"], integer(v, f.at("version"), in: 1...1, expected: "1 (the only config version)") == nil { return nil }
        let interfaces = list(f["interfaces"], f.at("interfaces"), what: "interfaces", interface)
        if let interfaces {
            unique(interfaces.map(\.name), f.at("interfaces"), key: "name", what: "interface")
            endpoints(interfaces, f.at("interfaces"))
        }
        return interfaces.map { Config(interfaces: $0) }
    }

    /// A VIP is defined once per interface. A DNAT rule neither listens on nor sends to a
    /// VIP. (A backend may serve several VIPs: replies are translated by connection.)
    func endpoints(_ interfaces: [InterfaceConfig], _ path: JSONPath) {
        let allVips = Set(interfaces.flatMap { $0.loadBalancers.map { "\($0.vipEndpoint)/\($0.proto)" } })
        for (i, iface) in interfaces.enumerated() {
            for (j, rule) in (iface.nat?.dnat ?? []).enumerated() {
                let at = path.index(i).key("nat").key("dnat").index(j)
                let target = "\(LoadBalancer.endpoint(rule.toAddress, rule.toPort))/\(rule.proto)"
                let exposed = "\(LoadBalancer.endpoint(rule.dst, rule.dstPort))/\(rule.proto)"
                if allVips.contains(target) {
                    fail(at.key("to_address"), "\(target) is the VIP of a load balancer; expected a DNAT target that is a server, not a VIP")
                }
                if iface.loadBalancers.contains(where: { "\($0.vipEndpoint)/\($0.proto)" == exposed }) {
                    fail(at.key("dst"), "\(exposed) is the VIP of a load balancer on this interface; expected one of them")
                }
            }
            var vips: [String: String] = [:]
            for (j, lb) in iface.loadBalancers.enumerated() {
                let at = path.index(i).key("load_balancers").index(j)
                let vip = "\(lb.vipEndpoint)/\(lb.proto)"
                if let other = vips[vip] {
                    fail(at.key("vip"), "\(vip) is already the VIP of load balancer \"\(other)\" on this interface; expected one load balancer per VIP address, port and protocol")
                }
                vips[vip] = lb.name
            }
        }
    }

    func interface(_ value: JSONValue, _ path: JSONPath) -> InterfaceConfig? {
        guard let f = fields(value, path, allowed: ["name", "xdp_mode", "nat_fast_path", "firewall", "rate_limits", "load_balancers", "nat"],
                             required: ["name"]) else { return nil }
        let ifname: String? = f["name"].flatMap { v in
            guard let s = string(v, f.at("name"), expected: "an interface name"),
                  (1...15).contains(s.utf8.count), !s.contains("/"), !s.contains(where: \.isWhitespace), s != ".", s != ".." else {
                fail(f.at("name"), v, expected: "an interface name of 1 to 15 characters without '/' or spaces")
                return nil
            }
            return s
        }
        let mode = f["xdp_mode"].map { choice($0, f.at("xdp_mode"), XDPMode.self) } ?? .auto
        let fastPath = f["nat_fast_path"].map { choice($0, f.at("nat_fast_path"), NATFastPath.self) } ?? .auto
        let fw = f["firewall"].map { firewall($0, f.at("firewall")) }
        let limits = list(f["rate_limits"], f.at("rate_limits"), what: "rate limits", rateLimit)
        let lbs = list(f["load_balancers"], f.at("load_balancers"), what: "load balancers", loadBalancer)
        let natConfig = f["nat"].map { nat($0, f.at("nat")) }
        if let limits { unique(limits.map(\.name), f.at("rate_limits"), key: "name", what: "rate limit") }
        if let lbs { unique(lbs.map(\.name), f.at("load_balancers"), key: "name", what: "load balancer") }
        guard let ifname, let mode, let fastPath, let limits, let lbs else { return nil }
        if case .some(nil) = fw { return nil }
        if case .some(nil) = natConfig { return nil }
        return InterfaceConfig(name: ifname, xdpMode: mode, natFastPath: fastPath, firewall: fw ?? nil, rateLimits: limits,
                               loadBalancers: lbs, nat: natConfig ?? nil)
    }
}
