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

    public static let verdictNames = ["aborted", "drop", "pass", "tx", "redirect"]
    public static let reasonNames = ["none", "firewall", "rate_limit", "malformed", "no_backend"]

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
        if let d = defaultAction, let e = earlier.defaultAction {
            r.defaultAction = Counter(name: d.name, packets: rate(d.packets, e.packets), bytes: rate(d.bytes, e.bytes))
        }
        return r
    }
}

public enum StatsRenderer {
    /// The `stats --json` document (SPEC.md shape; `firewall_default` added).
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
            members.append(JSONMember(key: "load_balancers", value: .array([])))
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
        }
        return out.isEmpty ? "no interfaces are attached\n" : out
    }
}

