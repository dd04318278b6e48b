import Foundation

/// Counters of one interface, summed over CPUs.
public struct InterfaceStats: Sendable, Equatable {
    public struct Counter: Sendable, Equatable {
        public var name: String
        public var packets: UInt64
        public var bytes: UInt64
        public init(name: String, packets: UInt64, bytes: UInt64) {
            self.name = name
            self.packets = packets
            self.bytes = bytes
        }
    }

    /// Packets a rate limit passed and dropped.
    public struct LimitCounter: Sendable, Equatable {
        public var name: String
        public var passed: UInt64
        public var dropped: UInt64
        public init(name: String, passed: UInt64, dropped: UInt64) {
            self.name = name
            self.passed = passed
            self.dropped = dropped
        }
    }

    /// A load balancer's counters and its backends'.
    public struct BalancerCounter: Sendable, Equatable {
        public struct Backend: Sendable, Equatable {
            public var address: String
            public var port: UInt16
            public var weight: UInt32
            public var state: String
            public var packets: UInt64 = 0
            public var bytes: UInt64 = 0
            public var connections: UInt64 = 0
            /// False while its health checks hold it down (it takes no new flows).
            public var healthy = true
            public init(address: String, port: UInt16, weight: UInt32, state: String) {
                self.address = address
                self.port = port
                self.weight = weight
                self.state = state
            }
        }
        public var name: String
        public var vip: String
        public var proto: String
        public var port: UInt16
        public var packets: UInt64 = 0
        public var bytes: UInt64 = 0
        public var connections: UInt64 = 0
        public var noBackend: UInt64 = 0
        public var backends: [Backend]
        public init(name: String, vip: String, proto: String, port: UInt16, backends: [Backend]) {
            self.name = name
            self.vip = vip
            self.proto = proto
            self.port = port
            self.backends = backends
        }
    }

    /// A NAT rule's counters: packets of its connections (both ways), mappings made, and
    /// new flows dropped for want of a port (SNAT).
    public struct NATCounter: Sendable, Equatable {
        public var name: String
        public var kind: String
        public var packets: UInt64 = 0
        public var bytes: UInt64 = 0
        public var connections: UInt64 = 0
        public var noPort: UInt64 = 0
        public init(name: String, kind: String) {
            self.name = name
            self.kind = kind
        }
    }

    /// What one of the interface's programs counted, by verdict (enum dp_verdict) and drop
    /// reason: for the tc egress program, what it saw leave.
    public struct EgressCounters: Sendable, Equatable {
        public var packets: UInt64 = 0
        public var bytes: UInt64 = 0
        public var verdicts: [UInt64] = Array(repeating: 0, count: verdictNames.count)
        public var dropReasons: [UInt64] = Array(repeating: 0, count: reasonNames.count)
        public init() {}
    }

    public static let verdictNames = ["aborted", "drop", "pass", "tx", "redirect"]
    /// The verdicts a tc program gives (it passes or drops).
    public static let tcVerdictNames: Set<String> = ["aborted", "drop", "pass"]
    public static let reasonNames = ["none", "firewall", "rate_limit", "malformed", "no_backend", "nat_no_port"]

    public var name: String
    public var ifindex: Int32
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    /// Indexed as enum dp_verdict.
    public var verdicts: [UInt64] = Array(repeating: 0, count: verdictNames.count)
    /// Indexed as enum dp_reason.
    public var dropReasons: [UInt64] = Array(repeating: 0, count: reasonNames.count)
    /// Per rule, in config order; nil without a firewall.
    public var rules: [Counter] = []
    public var defaultAction: Counter?
    /// Per rate limit, in config order.
    public var rateLimits: [LimitCounter] = []
    /// Per load balancer, in config order.
    public var loadBalancers: [BalancerCounter] = []
    /// Per NAT rule, DNAT then SNAT, in config order.
    public var nat: [NATCounter] = []
    /// The tc egress program's counters; nil on an interface without one (no NAT).
    public var egress: EgressCounters?

    public init(name: String, ifindex: Int32) {
        self.name = name
        self.ifindex = ifindex
    }

    /// Counter growth per second between two readings.
    public func rates(since earlier: InterfaceStats, seconds: Double) -> InterfaceStats {
        func rate(_ a: UInt64, _ b: UInt64) -> UInt64 { UInt64((Double(a &- b) / seconds).rounded()) }
        var r = self
        r.rxPackets = rate(rxPackets, earlier.rxPackets)
        r.rxBytes = rate(rxBytes, earlier.rxBytes)
        r.verdicts = zip(verdicts, earlier.verdicts).map(rate)
        r.dropReasons = zip(dropReasons, earlier.dropReasons).map(rate)
        r.rules = rules.map { c in
            let e = earlier.rules.first { $0.name == c.name } ?? Counter(name: c.name, packets: 0, bytes: 0)
            return Counter(name: c.name, packets: rate(c.packets, e.packets), bytes: rate(c.bytes, e.bytes))
        }
        r.rateLimits = rateLimits.map { c in
            let e = earlier.rateLimits.first { $0.name == c.name } ?? LimitCounter(name: c.name, passed: 0, dropped: 0)
            return LimitCounter(name: c.name, passed: rate(c.passed, e.passed), dropped: rate(c.dropped, e.dropped))
        }
        r.loadBalancers = loadBalancers.map { lb in
            var out = lb
            let e = earlier.loadBalancers.first { $0.name == lb.name }
            out.packets = rate(lb.packets, e?.packets ?? 0)
            out.bytes = rate(lb.bytes, e?.bytes ?? 0)
            out.connections = rate(lb.connections, e?.connections ?? 0)
            out.noBackend = rate(lb.noBackend, e?.noBackend ?? 0)
            out.backends = lb.backends.map { b in
                var o = b
                let eb = e?.backends.first { $0.address == b.address && $0.port == b.port }
                o.packets = rate(b.packets, eb?.packets ?? 0)
                o.bytes = rate(b.bytes, eb?.bytes ?? 0)
                o.connections = rate(b.connections, eb?.connections ?? 0)
                return o
            }
            return out
        }
        if let d = defaultAction, let e = earlier.defaultAction {
            r.defaultAction = Counter(name: d.name, packets: rate(d.packets, e.packets), bytes: rate(d.bytes, e.bytes))
        }
        r.nat = nat.map { c in
            var o = c
            let e = earlier.nat.first { $0.name == c.name } ?? NATCounter(name: c.name, kind: c.kind)
            (o.packets, o.bytes, o.connections, o.noPort) = (rate(c.packets, e.packets), rate(c.bytes, e.bytes),
                                                             rate(c.connections, e.connections), rate(c.noPort, e.noPort))
            return o
        }
        if let g = egress {
            let e = earlier.egress ?? EgressCounters()
            r.egress = EgressCounters()
            r.egress!.packets = rate(g.packets, e.packets)
            r.egress!.bytes = rate(g.bytes, e.bytes)
            r.egress!.verdicts = zip(g.verdicts, e.verdicts).map(rate)
            r.egress!.dropReasons = zip(g.dropReasons, e.dropReasons).map(rate)
        }
        return r
    }
}

public enum StatsRenderer {
    /// The `stats --json` document (docs/commands.md gives its shape).
    public static func json(_ stats: [InterfaceStats], generation: UInt64?) -> String {
        let ifs: [JSONValue] = stats.map { s in
            var members: [JSONMember] = [
                JSONMember(key: "name", value: .string(s.name)),
                JSONMember(key: "ifindex", value: .int(s.ifindex)),
                JSONMember(key: "rx_packets", value: .int(s.rxPackets)),
                JSONMember(key: "rx_bytes", value: .int(s.rxBytes)),
                JSONMember(key: "verdicts", value: .object(zip(InterfaceStats.verdictNames, s.verdicts).map {
                    JSONMember(key: $0, value: .int($1)) })),
                JSONMember(key: "drop_reasons", value: .object(zip(InterfaceStats.reasonNames, s.dropReasons).dropFirst().map {
                    JSONMember(key: $0, value: .int($1)) })),
                JSONMember(key: "rules", value: .array(s.rules.map {
                    .obj(["name": .string($0.name), "packets": .int($0.packets), "bytes": .int($0.bytes)]) })),
            ]
            if let d = s.defaultAction {
                members.append(JSONMember(key: "firewall_default", value: .obj([
                    "action": .string(d.name), "packets": .int(d.packets), "bytes": .int(d.bytes)])))
            }
            members.append(JSONMember(key: "rate_limits", value: .array(s.rateLimits.map {
                .obj(["name": .string($0.name), "passed": .int($0.passed), "dropped": .int($0.dropped)]) })))
            members.append(JSONMember(key: "load_balancers", value: .array(s.loadBalancers.map { lb in
                .obj(["name": .string(lb.name), "vip": .string(lb.vip), "proto": .string(lb.proto), "port": .int(lb.port),
                      "packets": .int(lb.packets), "bytes": .int(lb.bytes), "connections": .int(lb.connections),
                      "no_backend": .int(lb.noBackend),
                      "backends": .array(lb.backends.map { b in
                          .obj(["address": .string(b.address), "port": .int(b.port), "weight": .int(b.weight), "state": .string(b.state),
                                "packets": .int(b.packets), "bytes": .int(b.bytes), "connections": .int(b.connections),
                                "healthy": .bool(b.healthy)])
                      })])
            })))
            members.append(JSONMember(key: "nat", value: .array(s.nat.map {
                .obj(["name": .string($0.name), "kind": .string($0.kind), "packets": .int($0.packets), "bytes": .int($0.bytes),
                      "connections": .int($0.connections), "no_port": .int($0.noPort)]) })))
            members.append(JSONMember(key: "tc_egress", value: s.egress.map { g in
                .obj(["packets": .int(g.packets), "bytes": .int(g.bytes),
                      "verdicts": .object(zip(InterfaceStats.verdictNames, g.verdicts).filter { InterfaceStats.tcVerdictNames.contains($0.0) }.map {
                          JSONMember(key: $0, value: .int($1)) }),
                      "drop_reasons": .object(zip(InterfaceStats.reasonNames, g.dropReasons).dropFirst().map {
                          JSONMember(key: $0, value: .int($1)) })])
            } ?? .null))
            return .object(members)
        }
        var top: [JSONMember] = []
        if let generation { top.append(JSONMember(key: "generation", value: .int(generation))) }
        top.append(JSONMember(key: "interfaces", value: .array(ifs)))
        return JSONOutput.render(.object(top), indent: "  ")
    }

    /// Plain text for a terminal; `perSecond` labels the numbers as rates.
    public static func text(_ stats: [InterfaceStats], perSecond: Bool = false) -> String {
        let unit = perSecond ? "/s" : ""
        var out = ""
        for s in stats {
            out += "\(s.name) (ifindex \(s.ifindex))\n"
            out += "  rx            \(s.rxPackets) packets\(unit)  \(s.rxBytes) bytes\(unit)\n"
            out += "  verdicts      " + zip(InterfaceStats.verdictNames, s.verdicts).map { "\($0) \($1)" }.joined(separator: "  ") + "\n"
            out += "  drop reasons  " + zip(InterfaceStats.reasonNames, s.dropReasons).dropFirst().map { "\($0) \($1)" }.joined(separator: "  ") + "\n"
            if !s.rules.isEmpty || s.defaultAction != nil {
                let width = max(18, (s.rules.map(\.name.count).max() ?? 0) + 2)
                out += "  rules\n"
                for r in s.rules {
                    out += "    " + r.name.padding(toLength: width, withPad: " ", startingAt: 0) + "\(r.packets) packets\(unit)  \(r.bytes) bytes\(unit)\n"
                }
                if let d = s.defaultAction {
                    out += "    " + "(default \(d.name))".padding(toLength: width, withPad: " ", startingAt: 0) + "\(d.packets) packets\(unit)  \(d.bytes) bytes\(unit)\n"
                }
            }
            if !s.rateLimits.isEmpty {
                let width = max(18, (s.rateLimits.map(\.name.count).max() ?? 0) + 2)
                out += "  rate limits\n"
                for l in s.rateLimits {
                    out += "    " + l.name.padding(toLength: width, withPad: " ", startingAt: 0) + "\(l.passed) passed\(unit)  \(l.dropped) dropped\(unit)\n"
                }
            }
            if let g = s.egress {
                out += "  tc egress     \(g.packets) packets\(unit)  \(g.bytes) bytes\(unit)  pass \(g.verdicts[2])  drop \(g.verdicts[1])  aborted \(g.verdicts[0])  nat_no_port \(g.dropReasons[5])\n"
            }
            if !s.nat.isEmpty {
                let width = max(18, (s.nat.map(\.name.count).max() ?? 0) + 2)
                out += "  nat\n"
                for n in s.nat {
                    out += "    " + "\(n.name) (\(n.kind))".padding(toLength: width + 7, withPad: " ", startingAt: 0)
                        + "\(n.packets) packets\(unit)  \(n.bytes) bytes\(unit)  \(n.connections) connections\(unit)  \(n.noPort) no_port\(unit)\n"
                }
            }
            for lb in s.loadBalancers {
                out += "  load balancer \(lb.name)  \(lb.vip) port \(lb.port)/\(lb.proto)  \(lb.packets) packets\(unit)  \(lb.connections) connections\(unit)  \(lb.noBackend) no_backend\(unit)\n"
                for b in lb.backends {
                    let endpoint = LoadBalancer.endpoint(b.address, Int(b.port))
                    out += "    " + endpoint.padding(toLength: max(24, endpoint.count + 2), withPad: " ", startingAt: 0)
                        + "weight \(b.weight) \(b.state)\(b.healthy ? "" : ", down (health checks)")  \(b.packets) packets\(unit)  \(b.bytes) bytes\(unit)  \(b.connections) connections\(unit)\n"
                }
            }
        }
        return out.isEmpty ? "no interfaces are attached\n" : out
    }
}
