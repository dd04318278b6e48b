/// The config file, version 1, as validated values (docs/config.md is the reference). Every string the
/// file holds has been turned into a typed value; nothing here can be malformed.
public struct Config: Sendable, Equatable {
    public var interfaces: [InterfaceConfig]
}

public enum XDPMode: String, Sendable, CaseIterable {
    case native, generic, auto
}

/// Whether an interface's XDP program translates the packets of connections that other
/// interfaces' NAT rules made (docs/config.md, "The NAT fast path").
public enum NATFastPath: String, Sendable, CaseIterable {
    /// On, except on a veth: a frame a veth peer sends with a partial checksum (TX
    /// checksum offload, the default) would leave rewritten with a wrong one.
    case auto
    case on, off
}

public enum RuleAction: String, Sendable, CaseIterable {
    case allow, drop
}

public struct InterfaceConfig: Sendable, Equatable {
    public var name: String
    public var xdpMode: XDPMode
    public var natFastPath: NATFastPath = .auto
    public var firewall: Firewall?
    public var rateLimits: [RateLimit]
    public var loadBalancers: [LoadBalancer]
    public var nat: NAT?
}

public struct Firewall: Sendable, Equatable {
    public var defaultAction: RuleAction
    public var rules: [FirewallRule]

    public init(defaultAction: RuleAction, rules: [FirewallRule]) {
        self.defaultAction = defaultAction
        self.rules = rules
    }
}

/// A rule matches when every present field matches; a list matches when any item does.
public struct FirewallRule: Sendable, Equatable {
    public var name: String
    public var action: RuleAction
    public var src: [IPPrefix]
    public var dst: [IPPrefix]
    public var proto: IPProtocol?
    public var srcPorts: [PortRange]
    public var dstPorts: [PortRange]

    public init(name: String, action: RuleAction, src: [IPPrefix] = [], dst: [IPPrefix] = [], proto: IPProtocol? = nil,
                srcPorts: [PortRange] = [], dstPorts: [PortRange] = []) {
        self.name = name
        self.action = action
        self.src = src
        self.dst = dst
        self.proto = proto
        self.srcPorts = srcPorts
        self.dstPorts = dstPorts
    }
}

public enum TCPFlag: String, Sendable, CaseIterable {
    case fin, syn, rst, psh, ack, urg, ece, cwr
}

public struct RateLimit: Sendable, Equatable {
    public enum Scope: String, Sendable, CaseIterable { case source, rule }
    public var name: String
    public var proto: IPProtocol?
    public var src: [IPPrefix]
    public var dst: [IPPrefix]
    public var srcPorts: [PortRange]
    public var dstPorts: [PortRange]
    public var tcpFlags: [TCPFlag]
    public var per: Scope
    public var packetsPerSecond: UInt64?
    public var burstPackets: UInt64?
    public var bytesPerSecond: UInt64?
    public var burstBytes: UInt64?
    /// per source: the leading bits of the source address that pick a bucket (32 and 128
    /// by default: one bucket per address; 24 and 64: one per /24 and /64).
    public var sourceIPv4Prefix: Int
    public var sourceIPv6Prefix: Int

    public init(name: String, proto: IPProtocol?, src: [IPPrefix], dst: [IPPrefix], srcPorts: [PortRange], dstPorts: [PortRange],
                tcpFlags: [TCPFlag], per: Scope, packetsPerSecond: UInt64?, burstPackets: UInt64?, bytesPerSecond: UInt64?,
                burstBytes: UInt64?, sourceIPv4Prefix: Int = 32, sourceIPv6Prefix: Int = 128) {
        self.name = name
        self.proto = proto
        self.src = src
        self.dst = dst
        self.srcPorts = srcPorts
        self.dstPorts = dstPorts
        self.tcpFlags = tcpFlags
        self.per = per
        self.packetsPerSecond = packetsPerSecond
        self.burstPackets = burstPackets
        self.bytesPerSecond = bytesPerSecond
        self.burstBytes = burstBytes
        self.sourceIPv4Prefix = sourceIPv4Prefix
        self.sourceIPv6Prefix = sourceIPv6Prefix
    }
}

public struct LoadBalancer: Sendable, Equatable {
    /// `nat`: the backend's address and port are written into the packet, and replies
    /// are translated back. `dsr`: only the destination MAC changes (L2 direct server
    /// return); backends hold the VIP and answer the client themselves.
    public enum Forwarding: String, Sendable, CaseIterable { case nat, dsr }
    public struct Backend: Sendable, Equatable {
        public enum State: String, Sendable, CaseIterable { case active, draining }
        public var address: IPAddress
        public var port: UInt16
        public var weight: UInt32
        public var state: State
        public init(address: IPAddress, port: UInt16, weight: UInt32 = 100, state: State = .active) {
            self.address = address
            self.port = port
            self.weight = weight
            self.state = state
        }
    }
    /// How the agent checks each backend (docs/config.md, "health_check").
    public struct HealthCheck: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable { case tcp, http }
        public var kind: Kind
        /// The port checked; nil: the backend's.
        public var port: UInt16?
        /// http: the request's path, and the statuses that pass (nil: any 2xx or 3xx).
        public var path: String = "/"
        public var expectStatus: [UInt16]?
        public var intervalMs: UInt32
        public var timeoutMs: UInt32
        public var rise: UInt32
        public var fall: UInt32

        public init(kind: Kind, port: UInt16? = nil, path: String = "/", expectStatus: [UInt16]? = nil,
                    intervalMs: UInt32 = 1000, timeoutMs: UInt32 = 500, rise: UInt32 = 2, fall: UInt32 = 3) {
            (self.kind, self.port, self.path, self.expectStatus) = (kind, port, path, expectStatus)
            (self.intervalMs, self.timeoutMs, self.rise, self.fall) = (intervalMs, timeoutMs, rise, fall)
        }

        /// Whether an HTTP answer with `status` passes.
        public func passes(status: Int) -> Bool {
            expectStatus.map { $0.contains { Int($0) == status } } ?? (200...399).contains(status)
        }
    }
    public var name: String
    public var vip: IPAddress
    public var proto: IPProtocol
    public var port: UInt16
    public var forwarding: Forwarding
    public var backends: [Backend]
    /// Entries in the VIP's Maglev table: prime.
    public var tableSize: Int
    public var healthCheck: HealthCheck?

    /// The table sizes a config may ask for.
    public static let tableSizes = 251...1_048_573

    public init(name: String, vip: IPAddress, proto: IPProtocol, port: UInt16, forwarding: Forwarding = .nat,
                backends: [Backend], tableSize: Int = Maglev.defaultTableSize, healthCheck: HealthCheck? = nil) {
        self.name = name
        self.vip = vip
        self.proto = proto
        self.port = port
        self.forwarding = forwarding
        self.backends = backends
        self.tableSize = tableSize
        self.healthCheck = healthCheck
    }

    /// "address:port", with IPv6 addresses in brackets.
    public var vipEndpoint: String { Self.endpoint(vip, port) }

    public static func endpoint(_ address: IPAddress, _ port: UInt16) -> String {
        endpoint("\(address)", Int(port))
    }

    /// "host:port" for an address or name as text, with IPv6 addresses in brackets.
    public static func endpoint(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension LoadBalancer.Backend {
    public var endpoint: String { LoadBalancer.endpoint(address, port) }
}

public struct NAT: Sendable, Equatable {
    public struct DNAT: Sendable, Equatable {
        public var name: String
        public var proto: IPProtocol
        public var dst: IPAddress
        public var dstPort: UInt16
        public var toAddress: IPAddress
        public var toPort: UInt16
    }
    public struct SNAT: Sendable, Equatable {
        public var name: String
        public var src: [IPPrefix]
        /// nil: the interface's own address of the packet's family (masquerade).
        public var toAddress: IPAddress?
        public var portRange: PortRange
    }
    public var dnat: [DNAT]
    public var snat: [SNAT]
}
