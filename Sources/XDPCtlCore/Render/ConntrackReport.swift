import Foundation

/// One entry of a load balancer's connection table.
public struct ConnectionEntry: Sendable, Equatable {
    public enum State: String, Sendable {
        /// The client has sent a second packet; the flow stays on its backend.
        case established
        /// One packet seen (a SYN, or a first datagram); kept in the table of new connections.
        case halfOpen = "half-open"
        /// Its backend was removed: the flow's next packet is balanced afresh.
        case stale
    }
    public var interface: String
    public var loadBalancer: String
    public var proto: String
    public var client: IPAddress
    public var clientPort: UInt16
    public var vip: IPAddress
    public var vipPort: UInt16
    public var backend: IPAddress?
    public var backendPort: UInt16
    public var state: State
    public var ageSeconds: Double

    public init(interface: String, loadBalancer: String, proto: String, client: IPAddress, clientPort: UInt16, vip: IPAddress, vipPort: UInt16,
                backend: IPAddress?, backendPort: UInt16, state: State, ageSeconds: Double) {
        self.interface = interface
        self.loadBalancer = loadBalancer
        self.proto = proto
        self.client = client
        self.clientPort = clientPort
        self.vip = vip
        self.vipPort = vipPort
        self.backend = backend
        self.backendPort = backendPort
        self.state = state
        self.ageSeconds = ageSeconds
    }
}

public enum ConntrackRenderer {
    /// `conntrack --json`: the load balancers' connections, then NAT's.
    public static func json(_ entries: [ConnectionEntry], nat: [NATConnection]) -> String {
        JSONOutput.render(.obj(["nat": .array(nat.map(\.json)), "connections": .array(entries.map { e in
            .obj(["interface": .string(e.interface), "load_balancer": .string(e.loadBalancer), "proto": .string(e.proto),
                  "client": .string("\(e.client)"), "client_port": .int(e.clientPort),
                  "vip": .string("\(e.vip)"), "vip_port": .int(e.vipPort),
                  "backend": e.backend.map { .string("\($0)") } ?? .null, "backend_port": .int(e.backendPort),
                  "state": .string(e.state.rawValue), "age_seconds": .number(String(format: "%.3f", e.ageSeconds))])
        })]), indent: "  ")
    }

    public static func text(_ entries: [ConnectionEntry], nat: [NATConnection]) -> String {
        guard !entries.isEmpty || !nat.isEmpty else { return "no connections\n" }
        var out = ""
        if !nat.isEmpty {
            out += table(["INTERFACE", "RULE", "PROTO", "ORIGINAL", "REPLY", "STATE", "PKTS", "AGE(s)", "EXPIRES(s)"], nat.map { c in
                [c.interface, "\(c.rule) (\(c.kind))", c.proto, c.original.text, c.reply.text, c.state,
                 "\(c.packets.original)/\(c.packets.reply)", String(format: "%.1f", c.ageSeconds), String(format: "%.0f", c.expiresSeconds)]
            })
        }
        guard !entries.isEmpty else { return out }
        if !out.isEmpty { out += "\n" }
        func endpoint(_ a: IPAddress?, _ p: UInt16) -> String {
            guard let a else { return "?" }
            return LoadBalancer.endpoint(a, p)
        }
        let rows = entries.map { e in
            [e.interface, e.loadBalancer, e.proto, endpoint(e.client, e.clientPort), endpoint(e.vip, e.vipPort),
             endpoint(e.backend, e.backendPort), e.state.rawValue, String(format: "%.1f", e.ageSeconds)]
        }
        return out + table(["INTERFACE", "LB", "PROTO", "CLIENT", "VIP", "BACKEND", "STATE", "AGE(s)"], rows)
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max()! }
        return ([header] + rows).map { row in
            row.enumerated().map { c, v in c == row.count - 1 ? v : v.padding(toLength: widths[c], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

/// One NAT connection: its tuple as it arrived, the tuple it left with, and what the
/// replies look like when they arrive (the translated tuple reversed).
public struct NATConnection: Sendable, Equatable {
    public struct Tuple: Sendable, Equatable {
        public var src: IPAddress, sport: UInt16, dst: IPAddress, dport: UInt16
        public init(src: IPAddress, sport: UInt16, dst: IPAddress, dport: UInt16) {
            (self.src, self.sport, self.dst, self.dport) = (src, sport, dst, dport)
        }
        var json: JSONValue {
            .obj(["src": .string("\(src)"), "sport": .int(sport), "dst": .string("\(dst)"), "dport": .int(dport)])
        }
        var text: String { "\(LoadBalancer.endpoint(src, sport)) > \(LoadBalancer.endpoint(dst, dport))" }
    }
    public var interface: String
    public var rule: String
    public var kind: String
    public var proto: String
    public var original: Tuple
    public var reply: Tuple
    public var state: String
    public var ageSeconds: Double
    /// Seconds until it expires unless a packet comes.
    public var expiresSeconds: Double
    public var packets: (original: UInt64, reply: UInt64)
    public var bytes: (original: UInt64, reply: UInt64)

    public init(interface: String, rule: String, kind: String, proto: String, original: Tuple, reply: Tuple, state: String,
                ageSeconds: Double, expiresSeconds: Double, packets: (UInt64, UInt64), bytes: (UInt64, UInt64)) {
        (self.interface, self.rule, self.kind, self.proto) = (interface, rule, kind, proto)
        (self.original, self.reply, self.state) = (original, reply, state)
        (self.ageSeconds, self.expiresSeconds, self.packets, self.bytes) = (ageSeconds, expiresSeconds, packets, bytes)
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.interface == b.interface && a.original == b.original && a.reply == b.reply && a.state == b.state
    }

    var json: JSONValue {
        .obj(["interface": .string(interface), "rule": .string(rule), "kind": .string(kind), "proto": .string(proto),
              "original": original.json, "reply": reply.json, "state": .string(state),
              "age_seconds": .number(String(format: "%.3f", ageSeconds)),
              "expires_seconds": .number(String(format: "%.3f", expiresSeconds)),
              "packets": .obj(["original": .int(packets.original), "reply": .int(packets.reply)]),
              "bytes": .obj(["original": .int(bytes.original), "reply": .int(bytes.reply)])])
    }
}
