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
        let reader = Reader()
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
        let reader = Reader()
        let rules = reader.list(document, .root, what: "rules", reader.rule)
        if let rules { reader.unique(rules.map(\.name), .root, key: "name", what: "rule") }
        if let rules, reader.errors.isEmpty { return rules }
        throw ConfigErrors(errors: reader.errors)
    }
}

/// The decoding walk. Every function returns nil after recording an error.
private final class Reader {
    var errors: [ConfigError] = []

    func fail(_ path: JSONPath, _ message: String) {
        errors.append(ConfigError(path: path.description, message: message))
    }

    func fail(_ path: JSONPath, _ value: JSONValue, expected: String) {
        fail(path, "\(value.excerpt) is not valid; expected \(expected)")
    }

    // MARK: objects

    /// The members of an object, after checking that it is one and has no unknown or repeated keys.
    struct Fields {
        let path: JSONPath
        var members: [JSONMember] = []  // objects here have a handful of keys: a list beats hashing
        subscript(_ key: String) -> JSONValue? { members.first { $0.key == key }?.value }
        func at(_ key: String) -> JSONPath { path.key(key) }
    }

    func fields(_ value: JSONValue, _ path: JSONPath, allowed: [String], required: [String] = []) -> Fields? {
        guard case .object(let members) = value else {
            fail(path, value, expected: "an object with keys \(allowed.joined(separator: ", "))")
            return nil
        }
        var fields = Fields(path: path)
        for m in members {
            if !allowed.contains(m.key) {
                fail(path.key(m.key), "unknown key \"\(m.key)\"; expected one of: \(allowed.joined(separator: ", "))")
            } else if fields[m.key] != nil {
                fail(path.key(m.key), "key \"\(m.key)\" appears more than once")
            } else {
                fields.members.append(m)
            }
        }
        for key in required where fields[key] == nil {
            fail(path.key(key), "missing; this key is required")
        }
        return fields
    }

    // MARK: scalars

    func string(_ value: JSONValue, _ path: JSONPath, expected: String = "a string") -> String? {
        guard case .string(let s) = value else { fail(path, value, expected: expected); return nil }
        return s
    }

    func integer(_ value: JSONValue, _ path: JSONPath, in range: ClosedRange<UInt64>, expected: String) -> UInt64? {
        guard case .number(let text) = value, let n = UInt64(text), range.contains(n) else {
            fail(path, value, expected: expected)
            return nil
        }
        return n
    }

    func choice<E: RawRepresentable & CaseIterable>(_ value: JSONValue, _ path: JSONPath, _: E.Type) -> E? where E.RawValue == String {
        let names = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard let s = string(value, path, expected: "one of \(names)"), let e = E(rawValue: s) else {
            if case .string = value { fail(path, value, expected: "one of \(names)") }
            return nil
        }
        return e
    }

    func list<T>(_ value: JSONValue?, _ path: JSONPath, nonEmpty: Bool = false, what: String,
                 _ item: (JSONValue, JSONPath) -> T?) -> [T]? {
        guard let value else { return [] }
        guard case .array(let items) = value else { fail(path, value, expected: "a list of \(what)"); return nil }
        if nonEmpty && items.isEmpty { fail(path, "the list is empty; expected at least one of \(what) (leave the key out to match all)"); return nil }
        var out: [T] = []
        var ok = true
        for (i, v) in items.enumerated() {
            if let t = item(v, path.index(i)) { out.append(t) } else { ok = false }
        }
        return ok ? out : nil
    }

    func name(_ value: JSONValue?, _ path: JSONPath) -> String? {
        guard let value else { return nil }
        guard let s = string(value, path, expected: "a name (1 to 64 characters)") else { return nil }
        let ascii = s.utf8.allSatisfy { $0 < 0x80 }
        guard (1...64).contains(s.utf8.count), ascii ? !s.utf8.contains(where: { (0x0A...0x0D).contains($0) }) : !s.contains(where: \.isNewline) else {
            fail(path, value, expected: "a name (1 to 64 characters, no line breaks)")
            return nil
        }
        return s
    }

    func prefix(_ value: JSONValue, _ path: JSONPath) -> IPPrefix? {
        let expected = "an IPv4 or IPv6 address or prefix, e.g. 10.0.0.0/8 or 2001:db8::/32"
        guard let s = string(value, path, expected: expected) else { return nil }
        do {
            return try IPPrefix(s)
        } catch .hostBits(let masked) {
            fail(path, "\"\(s)\" has bits set past the prefix length; expected \(masked)")
        } catch .length {
            fail(path, value, expected: "a prefix length of 0-32 for IPv4 or 0-128 for IPv6")
        } catch {
            fail(path, value, expected: expected)
        }
        return nil
    }

    func address(_ value: JSONValue?, _ path: JSONPath) -> IPAddress? {
        guard let value else { return nil }
        let expected = "an IPv4 or IPv6 address, e.g. 10.0.0.1 or 2001:db8::1"
        guard let s = string(value, path, expected: expected) else { return nil }
        guard let a = IPAddress(s) else { fail(path, value, expected: expected); return nil }
        return a
    }

    func port(_ value: JSONValue?, _ path: JSONPath) -> UInt16? {
        guard let value else { return nil }
        return integer(value, path, in: 0...65535, expected: "a port number 0-65535").map { UInt16($0) }
    }

    func portRange(_ value: JSONValue, _ path: JSONPath) -> PortRange? {
        let expected = "a port number 0-65535 or a range \"low-high\" such as \"1000-2000\""
        switch value {
        case .number:
            return integer(value, path, in: 0...65535, expected: expected).map { PortRange(UInt16($0), UInt16($0)) }
        case .string(let s):
            let parts = s.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let lo = UInt16(parts[0]), let hi = UInt16(parts[1]) else {
                fail(path, value, expected: expected)
                return nil
            }
            guard lo <= hi else { fail(path, "\"\(s)\" runs backwards; expected low-high with low <= high"); return nil }
            return PortRange(lo, hi)
        default:
            fail(path, value, expected: expected)
            return nil
        }
    }

    func proto(_ value: JSONValue?, _ path: JSONPath) -> IPProtocol? {
        guard let value else { return nil }
        let expected = "\"tcp\", \"udp\", \"icmp\", \"icmpv6\" or a protocol number 0-255"
        switch value {
        case .string(let s):
            if let p = IPProtocol.names.first(where: { $0.0 == s })?.1 { return p }
        case .number:
            if let n = integer(value, path, in: 0...255, expected: expected) { return IPProtocol(UInt8(n)) }
            return nil
        default:
            break
        }
        fail(path, value, expected: expected)
        return nil
    }

    func unique(_ names: [String], _ path: JSONPath, key: String, what: String) {
        var seen: [String: Int] = [:]
        for (i, n) in names.enumerated() {
            if let first = seen[n] {
                fail(path.index(i).key(key), "duplicate \(what) name \"\(n)\" (first used at \(path.index(first).key(key)))")
            } else {
                seen[n] = i
            }
        }
    }

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

    /// A VIP is defined once per interface, and a backend endpoint serves one VIP in the
    /// whole file: NAT tells a backend's replies apart only by its address and port.
    func endpoints(_ interfaces: [InterfaceConfig], _ path: JSONPath) {
        var servedBy: [String: (path: JSONPath, lb: String)] = [:]
        for (i, iface) in interfaces.enumerated() {
            var vips: [String: String] = [:]
            for (j, lb) in iface.loadBalancers.enumerated() {
                let at = path.index(i).key("load_balancers").index(j)
                let vip = "\(lb.vipEndpoint)/\(lb.proto)"
                if let other = vips[vip] {
                    fail(at.key("vip"), "\(vip) is already the VIP of load balancer \"\(other)\" on this interface; expected one load balancer per VIP address, port and protocol")
                }
                vips[vip] = lb.name
                for (k, b) in lb.backends.enumerated() {
                    let key = "\(b.endpoint)/\(lb.proto)"
                    if let other = servedBy[key], other.lb != "\(i)/\(lb.name)" {
                        fail(at.key("backends").index(k), "backend \(key) already serves the VIP at \(other.path); expected each backend address, port and protocol in one load balancer only (NAT maps a backend's replies back to its VIP by address and port)")
                    } else {
                        servedBy[key] = (at, "\(i)/\(lb.name)")
                    }
                }
            }
        }
    }

    func interface(_ value: JSONValue, _ path: JSONPath) -> InterfaceConfig? {
        guard let f = fields(value, path, allowed: ["name", "xdp_mode", "firewall", "rate_limits", "load_balancers", "nat"],
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
        let fw = f["firewall"].map { firewall($0, f.at("firewall")) }
        let limits = list(f["rate_limits"], f.at("rate_limits"), what: "rate limits", rateLimit)
        let lbs = list(f["load_balancers"], f.at("load_balancers"), what: "load balancers", loadBalancer)
        let natConfig = f["nat"].map { nat($0, f.at("nat")) }
        if let limits { unique(limits.map(\.name), f.at("rate_limits"), key: "name", what: "rate limit") }
        if let lbs { unique(lbs.map(\.name), f.at("load_balancers"), key: "name", what: "load balancer") }
        guard let ifname, let mode, let limits, let lbs else { return nil }
        if case .some(nil) = fw { return nil }
        if case .some(nil) = natConfig { return nil }
        return InterfaceConfig(name: ifname, xdpMode: mode, firewall: fw ?? nil, rateLimits: limits,
                               loadBalancers: lbs, nat: natConfig ?? nil)
    }

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
            let reader = Reader()
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

    func loadBalancer(_ value: JSONValue, _ path: JSONPath) -> LoadBalancer? {
        guard let f = fields(value, path, allowed: ["name", "vip", "proto", "port", "forwarding", "backends", "table_size", "health_check"],
                             required: ["name", "vip", "proto", "port", "backends"]) else { return nil }
        let n = name(f["name"], f.at("name"))
        let vip = address(f["vip"], f.at("vip"))
        let p = proto(f["proto"], f.at("proto"))
        let port = self.port(f["port"], f.at("port"))
        let fwd = f["forwarding"].map { choice($0, f.at("forwarding"), LoadBalancer.Forwarding.self) } ?? .nat
        let backends = list(f["backends"], f.at("backends"), nonEmpty: false, what: "backends", backend)
        let hc = f["health_check"].map { healthCheck($0, f.at("health_check")) }
        let size = f["table_size"].map { v -> Int? in
            let range = UInt64(LoadBalancer.tableSizes.lowerBound)...UInt64(LoadBalancer.tableSizes.upperBound)
            guard let n = integer(v, f.at("table_size"), in: range, expected: "a prime from \(range.lowerBound) to \(range.upperBound)") else { return nil }
            guard Maglev.isPrime(Int(n)) else { fail(f.at("table_size"), v, expected: "a prime number (e.g. 65537 or 131071): a prime size lets every backend's walk reach every entry"); return nil }
            return Int(n)
        } ?? Maglev.defaultTableSize
        guard let n, let vip, let p, let port, let fwd, let backends, let size else { return nil }
        if case .some(nil) = hc { return nil }
        guard p.hasPorts else { fail(f.at("proto"), f["proto"]!, expected: "\"tcp\" or \"udp\""); return nil }
        for (i, b) in backends.enumerated() where b.address.family != vip.family {
            fail(f.at("backends").index(i).key("address"), "backend is \(b.address.family == .ipv4 ? "IPv4" : "IPv6") but the VIP \(vip) is not; expected the VIP's address family")
            return nil
        }
        var seen: [String: Int] = [:]
        for (i, b) in backends.enumerated() {
            let key = "\(b.address)|\(b.port)"
            if let first = seen[key] {
                fail(f.at("backends").index(i), "backend \(b.endpoint) is already backends[\(first)]; expected each backend once")
                return nil
            }
            seen[key] = i
        }
        return LoadBalancer(name: n, vip: vip, proto: p, port: port, forwarding: fwd, backends: backends, tableSize: size, healthCheck: hc ?? nil)
    }

    func backend(_ value: JSONValue, _ path: JSONPath) -> LoadBalancer.Backend? {
        guard let f = fields(value, path, allowed: ["address", "port", "weight", "state"], required: ["address", "port"]) else { return nil }
        let a = address(f["address"], f.at("address"))
        let p = port(f["port"], f.at("port"))
        let w = f["weight"].map { integer($0, f.at("weight"), in: 1...65535, expected: "a weight from 1 to 65535") } ?? 100
        let s = f["state"].map { choice($0, f.at("state"), LoadBalancer.Backend.State.self) } ?? .active
        guard let a, let p, let w, let s else { return nil }
        return LoadBalancer.Backend(address: a, port: p, weight: UInt32(w), state: s)
    }

    func healthCheck(_ value: JSONValue, _ path: JSONPath) -> LoadBalancer.HealthCheck? {
        guard let f = fields(value, path, allowed: ["type", "interval_ms", "timeout_ms", "rise", "fall"], required: ["type"]) else { return nil }
        let kind = f["type"].map { choice($0, f.at("type"), LoadBalancer.HealthCheck.Kind.self) } ?? nil
        let num = { (key: String, def: UInt64, range: ClosedRange<UInt64>) -> UInt64? in
            f[key].map { self.integer($0, f.at(key), in: range, expected: "a whole number from \(range.lowerBound) to \(range.upperBound)") } ?? def
        }
        let interval = num("interval_ms", 1000, 10...3_600_000), timeout = num("timeout_ms", 500, 1...3_600_000)
        let rise = num("rise", 2, 1...100), fall = num("fall", 3, 1...100)
        guard let kind, let interval, let timeout, let rise, let fall else { return nil }
        if timeout > interval { fail(f.at("timeout_ms"), "\(timeout) is longer than interval_ms \(interval); expected timeout_ms <= interval_ms"); return nil }
        return .init(kind: kind, intervalMs: UInt32(interval), timeoutMs: UInt32(timeout), rise: UInt32(rise), fall: UInt32(fall))
    }

    func nat(_ value: JSONValue, _ path: JSONPath) -> NAT? {
        guard let f = fields(value, path, allowed: ["dnat", "snat"]) else { return nil }
        let d = list(f["dnat"], f.at("dnat"), what: "DNAT rules", dnat)
        let s = list(f["snat"], f.at("snat"), what: "SNAT rules", snat)
        guard let d, let s else { return nil }
        unique(d.map(\.name) + s.map(\.name), f.at(d.isEmpty ? "snat" : "dnat"), key: "name", what: "NAT rule")
        return NAT(dnat: d, snat: s)
    }

    func dnat(_ value: JSONValue, _ path: JSONPath) -> NAT.DNAT? {
        guard let f = fields(value, path, allowed: ["name", "proto", "dst", "dst_port", "to_address", "to_port"],
                             required: ["name", "proto", "dst", "dst_port", "to_address", "to_port"]) else { return nil }
        let n = name(f["name"], f.at("name")), p = proto(f["proto"], f.at("proto"))
        let dst = address(f["dst"], f.at("dst")), dport = port(f["dst_port"], f.at("dst_port"))
        let to = address(f["to_address"], f.at("to_address")), toPort = port(f["to_port"], f.at("to_port"))
        guard let n, let p, let dst, let dport, let to, let toPort else { return nil }
        guard p.hasPorts else { fail(f.at("proto"), f["proto"]!, expected: "\"tcp\" or \"udp\""); return nil }
        guard to.family == dst.family else { fail(f.at("to_address"), "\(to) is not in the address family of dst \(dst)"); return nil }
        return NAT.DNAT(name: n, proto: p, dst: dst, dstPort: dport, toAddress: to, toPort: toPort)
    }

    func snat(_ value: JSONValue, _ path: JSONPath) -> NAT.SNAT? {
        guard let f = fields(value, path, allowed: ["name", "src", "to_address", "port_range"],
                             required: ["name", "src", "to_address"]) else { return nil }
        let n = name(f["name"], f.at("name"))
        let src = list(f["src"], f.at("src"), nonEmpty: true, what: "prefixes", prefix)
        let to = address(f["to_address"], f.at("to_address"))
        let range = f["port_range"].map { portRange($0, f.at("port_range")) } ?? PortRange(1024, 65535)
        guard let n, let src, let to, let range else { return nil }
        if !src.contains(where: { $0.family == to.family }) {
            fail(f.at("to_address"), "\(to) is not in the address family of any src prefix"); return nil
        }
        return NAT.SNAT(name: n, src: src, toAddress: to, portRange: range)
    }
}
