/// Decoding the load-balancer and NAT sections of an interface.
extension ConfigReader {
    func loadBalancer(_ value: JSONValue, _ path: JSONPath) -> LoadBalancer? {
        guard let f = fields(value, path, allowed: ["name", "vip", "proto", "port", "forwarding", "backends", "table_size", "health_check"],
                             required: ["name", "vip", "proto", "port", "backends"]) else { return nil }
        let n = name(f["name"], f.at("name"))
        let vip = address(f["vip"], f.at("vip"))
        let p = proto(f["proto"], f.at("proto"))
        let port = self.port(f["port"], f.at("port"))
        let fwd = f["forwarding"].map { choice($0, f.at("forwarding"), LoadBalancer.Forwarding.self) } ?? .nat
        let backends = list(f["backends"], f.at("backends"), nonEmpty: false, what: "backends", backend)
        let hc = f["health_check"].map { healthCheck($0, f.at("health_check"), proto: p) }
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
        if fwd == .dsr, let i = backends.firstIndex(where: { $0.port != port }) {
            fail(f.at("backends").index(i).key("port"), "\(backends[i].port) differs from the VIP's port \(port), and direct server return cannot change ports (the packet reaches the backend as the client sent it); expected \(port)")
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

    func healthCheck(_ value: JSONValue, _ path: JSONPath, proto: IPProtocol?) -> LoadBalancer.HealthCheck? {
        guard let f = fields(value, path, allowed: ["type", "port", "path", "expect_status", "interval_ms", "timeout_ms", "rise", "fall"],
                             required: ["type"]) else { return nil }
        let kind = f["type"].map { choice($0, f.at("type"), LoadBalancer.HealthCheck.Kind.self) } ?? nil
        let num = { (key: String, def: UInt64, range: ClosedRange<UInt64>) -> UInt64? in
            f[key].map { self.integer($0, f.at(key), in: range, expected: "a whole number from \(range.lowerBound) to \(range.upperBound)") } ?? def
        }
        let interval = num("interval_ms", 1000, 10...3_600_000), timeout = num("timeout_ms", 500, 1...3_600_000)
        let rise = num("rise", 2, 1...100), fall = num("fall", 3, 1...100)
        let checkPort = f["port"].map { integer($0, f.at("port"), in: 1...65535, expected: "a port number 1-65535").map { UInt16($0) } }
        let requestPath = f["path"].map { v -> String? in
            // A request line of its own: no spaces, control characters or non-ASCII bytes.
            guard let s = string(v, f.at("path"), expected: "a path starting with /"),
                  s.hasPrefix("/"), s.utf8.count <= 1024, s.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                fail(f.at("path"), v, expected: "a path starting with / (up to 1,024 printable ASCII characters, no spaces; %-encode others)")
                return nil
            }
            return s
        }
        let expect = f["expect_status"].map { v -> [UInt16]? in
            let status = { (v: JSONValue, at: JSONPath) in self.integer(v, at, in: 100...599, expected: "an HTTP status from 100 to 599").map { UInt16($0) } }
            if case .array = v { return list(v, f.at("expect_status"), nonEmpty: true, what: "HTTP statuses", status) }
            return status(v, f.at("expect_status")).map { [$0] }
        }
        guard let kind, let interval, let timeout, let rise, let fall else { return nil }
        if case .some(nil) = checkPort { return nil }
        if case .some(nil) = requestPath { return nil }
        if case .some(nil) = expect { return nil }
        if timeout > interval { fail(f.at("timeout_ms"), "\(timeout) is longer than interval_ms \(interval); expected timeout_ms <= interval_ms"); return nil }
        if kind == .tcp, let key = ["path", "expect_status"].first(where: { f[$0] != nil }) {
            fail(f.at(key), "only http checks have \(key); expected \"type\": \"http\", or no \(key)")
            return nil
        }
        // The agent checks over TCP: a UDP service is checked on a TCP port of the backend's.
        if proto == .udp, f["port"] == nil {
            fail(path, "a UDP load balancer's backends are checked over TCP (xdpctl cannot check a UDP service); expected a \"port\" that each backend serves over TCP")
            return nil
        }
        return .init(kind: kind, port: checkPort ?? nil, path: (requestPath ?? nil) ?? "/", expectStatus: expect ?? nil,
                     intervalMs: UInt32(interval), timeoutMs: UInt32(timeout), rise: UInt32(rise), fall: UInt32(fall))
    }

    func nat(_ value: JSONValue, _ path: JSONPath) -> NAT? {
        guard let f = fields(value, path, allowed: ["dnat", "snat"]) else { return nil }
        let d = list(f["dnat"], f.at("dnat"), what: "DNAT rules", dnat)
        let s = list(f["snat"], f.at("snat"), what: "SNAT rules", snat)
        guard let d, let s else { return nil }
        unique(d.map(\.name) + s.map(\.name), f.at(d.isEmpty ? "snat" : "dnat"), key: "name", what: "NAT rule")
        var publics: [String: String] = [:]
        for (i, rule) in d.enumerated() {
            let key = "\(LoadBalancer.endpoint(rule.dst, rule.dstPort))/\(rule.proto)"
            if let other = publics[key] {
                fail(f.at("dnat").index(i), "\(key) is already the public endpoint of DNAT rule \"\(other)\"; expected each dst, dst_port and proto in one DNAT rule")
            }
            publics[key] = rule.name
        }
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
                             required: ["name", "src"]) else { return nil }
        let n = name(f["name"], f.at("name"))
        let src = list(f["src"], f.at("src"), nonEmpty: true, what: "prefixes", prefix)
        let to = f["to_address"].map { address($0, f.at("to_address")) }
        let range = f["port_range"].map { portRange($0, f.at("port_range")) } ?? PortRange(1024, 65535)
        guard let n, let src, let range else { return nil }
        if case .some(nil) = to { return nil }
        if range.low == 0 { fail(f.at("port_range"), "\(range) includes port 0; expected ports within 1-65535"); return nil }
        if let to = to ?? nil, let other = src.first(where: { $0.family != to.family }) {
            fail(f.at("to_address"), "\(to) is not in the address family of src prefix \(other); expected an SNAT rule per family (or no to_address: the interface's own address of each family)"); return nil
        }
        return NAT.SNAT(name: n, src: src, toAddress: to ?? nil, portRange: range)
    }
}
