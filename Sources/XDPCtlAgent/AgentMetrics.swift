import CXDPCtlABI
import Logging
import Prometheus
import XDPCtlCore
import XDPCtlKit

/// The agent's Prometheus metrics (docs/agent.md lists them), in swift-prometheus's
/// registry, which the metrics server's threads render. The data plane's counters are
/// read by the agent's loop just before a scrape renders them (refresh); its own, the
/// applies, as they happen. Used from the agent's loop only; the registry is Sendable.
final class AgentMetrics {
    let registry = PrometheusCollectorRegistry()

    private struct Family {
        let name: String
        let help: String

        var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: name, unitName: "", helpText: help) }
    }

    private struct Series: Hashable {
        let name: String
        let labels: [String]
    }

    private var counters: [Series: (counter: Counter, value: UInt64)] = [:]
    private var gauges: [Series: Gauge] = [:]
    /// The series the last refresh set: the others belong to interfaces, rules, limits,
    /// VIPs or backends that are gone, and leave the registry.
    private var seen: Set<Series> = []

    private let ruleLabels = RuleLabels()
    private let applies: (success: Counter, failure: Counter)
    private let applyDuration: DurationHistogram
    private let lastApplyOK: Gauge

    init() {
        let applied = Family(name: "xdpctl_applies_total", help: "Applies of the config file by the agent, by result.").descriptor
        applies = (registry.makeCounter(descriptor: applied, labels: [("result", "success")]),
                   registry.makeCounter(descriptor: applied, labels: [("result", "failure")]))
        applyDuration = registry.makeDurationHistogram(
            descriptor: Family(name: "xdpctl_apply_duration_seconds", help: "Time an apply by the agent took, failed ones included.").descriptor,
            labels: [],
            buckets: [.milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                      .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10)])
        lastApplyOK = registry.makeGauge(descriptor: Family(
            name: "xdpctl_config_last_apply_successful",
            help: "1 when the agent's last apply of the config file succeeded, else 0 (the previous config keeps serving).").descriptor)
    }

    /// The file's text is the running config's again (an edit undone): nothing to apply,
    /// and nothing failing.
    func recordFileRuns() {
        lastApplyOK.set(to: 1.0)
    }

    /// Records an apply by the agent.
    func recordApply(succeeded: Bool, duration: Duration) {
        (succeeded ? applies.success : applies.failure).increment()
        applyDuration.record(duration)
        lastApplyOK.set(to: succeeded ? 1.0 : 0.0)
    }

    // MARK: the data plane's figures

    private static let generation = Family(name: "xdpctl_config_generation", help: "The generation of the applied config; it grows with every apply that changes something.")
    private static let attached = Family(name: "xdpctl_interface_attached", help: "1 while the interface's XDP program is attached through xdpctl's link, else 0.")
    private static let packets = Family(name: "xdpctl_packets_total", help: "Packets the interface's program saw: hook xdp (ingress) or tc (egress, interfaces with NAT).")
    private static let bytes = Family(name: "xdpctl_bytes_total", help: "Bytes the interface's program saw, by hook.")
    private static let verdicts = Family(name: "xdpctl_verdicts_total", help: "Packets by the program's verdict (aborted, drop, pass, tx, redirect), by hook.")
    private static let drops = Family(name: "xdpctl_drops_total", help: "Dropped packets by reason (firewall, rate_limit, malformed, no_backend, nat_no_port), by hook.")
    private static let defaultPackets = Family(name: "xdpctl_firewall_default_packets_total", help: "Packets no firewall rule matched, decided by the default action.")
    private static let limitPackets = Family(name: "xdpctl_rate_limit_packets_total", help: "Packets a rate limit charged, by result (passed, dropped).")
    private static let vipPackets = Family(name: "xdpctl_lb_packets_total", help: "Packets of a load balancer's connections, both directions.")
    private static let vipBytes = Family(name: "xdpctl_lb_bytes_total", help: "Bytes of a load balancer's connections, both directions.")
    private static let vipConnections = Family(name: "xdpctl_lb_connections_total", help: "Connections a load balancer opened.")
    private static let vipNoBackend = Family(name: "xdpctl_lb_no_backend_drops_total", help: "New flows to a VIP dropped because no backend could take them.")
    private static let backendPackets = Family(name: "xdpctl_backend_packets_total", help: "Packets of a backend's connections, both directions.")
    private static let backendBytes = Family(name: "xdpctl_backend_bytes_total", help: "Bytes of a backend's connections, both directions.")
    private static let backendConnections = Family(name: "xdpctl_backend_connections_total", help: "Connections the load balancer gave a backend.")
    private static let backendHealthy = Family(name: "xdpctl_backend_healthy", help: "1 while the backend counts as healthy (healthy in stats --json), else 0.")
    private static let natPackets = Family(name: "xdpctl_nat_packets_total", help: "Packets a NAT rule translated, both directions.")
    private static let natBytes = Family(name: "xdpctl_nat_bytes_total", help: "Bytes of the packets a NAT rule translated.")
    private static let natConnections = Family(name: "xdpctl_nat_connections_total", help: "Connections a NAT rule opened.")
    private static let natNoPort = Family(name: "xdpctl_nat_no_port_drops_total", help: "New flows a SNAT rule dropped because every port of its range was taken.")
    private static let connections = Family(name: "xdpctl_conntrack_connections", help: "Connections in the shared connection table, by owner (nat, lb) and table (established, new); expired ones count until reused.")
    private static let capacity = Family(name: "xdpctl_conntrack_capacity_connections", help: "Connections each table holds at most (two entries each).")
    private static let memory = Family(name: "xdpctl_map_memory_bytes", help: "Kernel memory of the interface's maps, as the kernel charges it.")

    /// Reads the data plane's counters into the registry, and returns the per-rule series
    /// (RuleSeries) as the bytes to serve after it. Nothing applied: the data plane's series
    /// leave the registry. Throws what reading the data plane threw; the series keep
    /// their last values then.
    func refresh(from dataplane: Dataplane, rules: RuleSeries) throws(DataplaneError) -> [UInt8] {
        seen = []
        guard let status = try dataplane.status(), let stats = try dataplane.stats() else {
            sweep()
            return []
        }
        gauge(Self.generation, [], Double(status.generation))
        gauge(Self.capacity, [("table", "established")], Double(DP_CT_MAX / 2))
        gauge(Self.capacity, [("table", "new")], Double(DP_CT_NEW_MAX / 2))
        for s in status.interfaces {
            let at = [("interface", s.name)]
            gauge(Self.attached, at, s.linkIntact ? 1 : 0)
            gauge(Self.memory, at, Double(s.mapMemory))
            for (owner, established, new) in [("nat", s.natConnections, s.natNew), ("lb", s.connections, s.halfOpen)] {
                gauge(Self.connections, at + [("owner", owner), ("table", "established")], Double(established))
                gauge(Self.connections, at + [("owner", owner), ("table", "new")], Double(new))
            }
        }
        for s in stats.interfaces { record(s) }
        sweep()
        return rules.text(stats.interfaces, generation: stats.generation, labels: ruleLabels)
    }

    private func record(_ s: InterfaceStats) {
        let at = [("interface", s.name)]
        var hooks = [(hook: "xdp", packets: s.rxPackets, bytes: s.rxBytes, verdicts: s.verdicts, reasons: s.dropReasons)]
        if let g = s.egress { hooks.append(("tc", g.packets, g.bytes, g.verdicts, g.dropReasons)) }
        for h in hooks {
            let on = at + [("hook", h.hook)]
            count(Self.packets, on, h.packets)
            count(Self.bytes, on, h.bytes)
            for (name, n) in zip(InterfaceStats.verdictNames, h.verdicts) where h.hook == "xdp" || InterfaceStats.tcVerdictNames.contains(name) {
                count(Self.verdicts, on + [("verdict", name)], n)
            }
            for (reason, n) in zip(InterfaceStats.reasonNames, h.reasons).dropFirst() {
                count(Self.drops, on + [("reason", reason)], n)
            }
        }
        if let d = s.defaultAction { count(Self.defaultPackets, at + [("action", d.name)], d.packets) }
        for l in s.rateLimits {
            count(Self.limitPackets, at + [("limit", l.name), ("result", "passed")], l.passed)
            count(Self.limitPackets, at + [("limit", l.name), ("result", "dropped")], l.dropped)
        }
        for lb in s.loadBalancers {
            let vip = at + [("vip", lb.name)]
            count(Self.vipPackets, vip, lb.packets)
            count(Self.vipBytes, vip, lb.bytes)
            count(Self.vipConnections, vip, lb.connections)
            count(Self.vipNoBackend, vip, lb.noBackend)
            for b in lb.backends {
                let backend = vip + [("backend", LoadBalancer.endpoint(b.address, Int(b.port)))]
                count(Self.backendPackets, backend, b.packets)
                count(Self.backendBytes, backend, b.bytes)
                count(Self.backendConnections, backend, b.connections)
                gauge(Self.backendHealthy, backend, b.healthy ? 1 : 0)
            }
        }
        for n in s.nat {
            let rule = at + [("rule", n.name), ("kind", n.kind)]
            count(Self.natPackets, rule, n.packets)
            count(Self.natBytes, rule, n.bytes)
            count(Self.natConnections, rule, n.connections)
            if n.kind == "snat" { count(Self.natNoPort, at + [("rule", n.name)], n.noPort) }
        }
    }

    // MARK: series

    /// Sets a counter series to a total the kernel keeps. swift-prometheus's counters
    /// only grow, so the difference is added; a total that shrank (its map was made
    /// anew) starts the series again, which Prometheus reads as a counter reset.
    private func count(_ family: Family, _ labels: [(String, String)], _ value: UInt64) {
        let key = Series(name: family.name, labels: labels.flatMap { [$0.0, $0.1] })
        seen.insert(key)
        if let (counter, last) = counters[key] {
            if value >= last {
                counter.increment(by: Int64(clamping: value - last))
            } else {
                counter.reset()
                counter.increment(by: Int64(clamping: value))
            }
            counters[key] = (counter, value)
            return
        }
        let counter = registry.makeCounter(descriptor: family.descriptor, labels: labels)
        counter.increment(by: Int64(clamping: value))
        counters[key] = (counter, value)
    }

    private func gauge(_ family: Family, _ labels: [(String, String)], _ value: Double) {
        let key = Series(name: family.name, labels: labels.flatMap { [$0.0, $0.1] })
        seen.insert(key)
        let gauge = gauges[key] ?? registry.makeGauge(descriptor: family.descriptor, labels: labels)
        gauges[key] = gauge
        gauge.set(to: value)
    }

    private func sweep() {
        for (key, (counter, _)) in counters where !seen.contains(key) {
            registry.unregisterCounter(counter)
            counters[key] = nil
        }
        for (key, gauge) in gauges where !seen.contains(key) {
            registry.unregisterGauge(gauge)
            gauges[key] = nil
        }
    }
}

/// Each rule's label set in the text format (`{interface="...",rule="..."} `), by
/// interface, for one generation: rule names change only with an apply.
final class RuleLabels {
    private var generation: UInt64?
    private var sets: [String: [[UInt8]]] = [:]

    func sets(of s: InterfaceStats, generation: UInt64) -> [[UInt8]] {
        if generation != self.generation { (self.generation, sets) = (generation, [:]) }
        if let known = sets[s.name], known.count == s.rules.count { return known }
        let prefix = Array("{interface=\"\(RuleSeries.escape(s.name))\",rule=\"".utf8)
        let made = s.rules.map { prefix + RuleSeries.escape($0.name).utf8 + "\"} ".utf8 }
        sets[s.name] = made
        return made
    }
}

/// Which firewall rules get series of their own (`--metrics-rules`), and their text.
///
/// Written here rather than registered in swift-prometheus: its registry copies a
/// family's table of series for every series it adds, so 200,000 series (100,000 rules,
/// packets and bytes) took over ten minutes to register; these go straight from the
/// kernel's totals into the exposition format.
public enum RuleSeries: Sendable, Equatable {
    case all
    /// No per-rule series ("none" on the command line).
    case off
    /// The N rules of each interface that decided the most packets.
    case top(Int)

    /// "all", "none" or "top:N" (N ≥ 1); nil for anything else.
    public init?(_ text: String) {
        switch text {
        case "all": self = .all
        case "none": self = .off
        default:
            guard text.hasPrefix("top:"), let n = Int(text.dropFirst(4)), n >= 1 else { return nil }
            self = .top(n)
        }
    }

    /// The two families' HELP, TYPE and samples, for the chosen rules of `interfaces`,
    /// as the bytes of the text format (built as bytes: 200,000 lines a scrape, their
    /// label sets kept in `labels` while the generation lasts).
    func text(_ interfaces: [InterfaceStats], generation: UInt64, labels: RuleLabels) -> [UInt8] {
        guard self != .off else { return [] }
        var packets: [UInt8] = [], bytes: [UInt8] = []
        packets.reserveCapacity(interfaces.reduce(0) { $0 + $1.rules.count } * 80)
        bytes.reserveCapacity(packets.capacity)
        packets += "# HELP xdpctl_rule_packets_total Packets a firewall rule decided.\n# TYPE xdpctl_rule_packets_total counter\n".utf8
        bytes += "# HELP xdpctl_rule_bytes_total Bytes of the packets a firewall rule decided.\n# TYPE xdpctl_rule_bytes_total counter\n".utf8
        var any = false
        for s in interfaces {
            let sets = labels.sets(of: s, generation: generation)
            var chosen = Array(s.rules.indices)
            if case .top(let n) = self, chosen.count > n {
                // The most packets first (ties: file order), then shown in file order.
                chosen = chosen.sorted { (s.rules[$0].packets, $1) > (s.rules[$1].packets, $0) }.prefix(n).sorted()
            }
            for i in chosen {
                packets += "xdpctl_rule_packets_total".utf8
                packets += sets[i]
                Self.append(s.rules[i].packets, to: &packets)
                bytes += "xdpctl_rule_bytes_total".utf8
                bytes += sets[i]
                Self.append(s.rules[i].bytes, to: &bytes)
                any = true
            }
        }
        return any ? packets + bytes : []
    }

    /// Appends `value` in decimal, and a line feed.
    private static func append(_ value: UInt64, to buffer: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var v = value, n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[19 - n] = 0x30 + UInt8(v % 10)
                v /= 10
                n += 1
            } while v > 0
            buffer += d[(20 - n)...]
        }
        buffer.append(0x0A)
    }

    /// A label value as the text format writes it: backslash, quote and line feed escaped.
    static func escape(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return value }
        var out = ""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
