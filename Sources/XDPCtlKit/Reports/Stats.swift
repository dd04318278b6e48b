import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

extension Dataplane {
    /// Counters of every attached interface (or one), summed over CPUs; nil when nothing
    /// is applied under the pin root. Reads names and slots from the state's summary,
    /// not the config (a `--watch` tick does this every interval).
    public func stats(interface: String? = nil) throws(DataplaneError) -> (generation: UInt64, interfaces: [InterfaceStats])? {
        guard let state = try reportState() else { return nil }
        var out: [InterfaceStats] = []
        for s in state.interfaces where interface == nil || s.name == interface {
            do { out.append(try counters(of: s)) } catch { throw .kernel(error) }
        }
        if let interface, out.isEmpty {
            throw .state("interface \"\(interface)\" is not attached by xdpctl (attached: \(state.interfaces.map(\.name).joined(separator: ", ")))")
        }
        return (state.generation, out)
    }

    func counters(of s: InterfaceState) throws(BPFError) -> InterfaceStats {
        var stats = InterfaceStats(name: s.name, ifindex: s.ifindex)
        let ingress = try programCounters(DP_MAP_STATS, of: s.name)
        (stats.rxPackets, stats.rxBytes, stats.verdicts, stats.dropReasons) = (ingress.packets, ingress.bytes, ingress.verdicts, ingress.dropReasons)
        if access(root.tcLink(s.name), F_OK) == 0 { stats.egress = try programCounters(DP_MAP_TC_STATS, of: s.name) }
        guard let summary = s.summary else { return stats }
        if !summary.nat.isEmpty {
            let natStats = try BPFMap.open(pinned: root.shared(DP_MAP_NAT_STATS))
            stats.nat = try summary.nat.map { (c: InterfaceStats.NATCounter) throws(BPFError) in
                var c = c
                for v in try natStats.lookupPerCPU(s.natSlots[c.name] ?? 0, as: dp_nat_stats.self) {
                    c.packets += v.packets
                    c.bytes += v.bytes
                    c.connections += v.connections
                    c.noPort += v.no_port
                }
                return c
            }
        }
        if !summary.limits.isEmpty {
            let limitMap = try BPFMap.open(pinned: root.map(DP_MAP_RL_STATS, of: s.name))
            for name in summary.limits {
                let per = try limitMap.lookupPerCPU(s.limitSlots[name] ?? 0, as: dp_rl_stats.self)
                stats.rateLimits.append(.init(name: name, passed: per.reduce(0) { $0 + $1.passed }, dropped: per.reduce(0) { $0 + $1.dropped }))
            }
        }
        if !summary.balancers.isEmpty { stats.loadBalancers = try balancerCounters(summary.balancers, s) }
        if let defaultAction = summary.defaultAction {
            // Every rule's counters in a few batches, not a system call per rule.
            let rules = s.slots.inOrder
            let cpus = BPFMap.possibleCPUs
            let all = try BPFMap.open(pinned: root.map(DP_MAP_RULE_STATS, of: s.name))
                .lookupPerCPU(keys: Int(rules.map(\.slot).max() ?? 0) + 1, as: dp_rule_stats.self)
            func counter(_ name: String, _ slot: UInt32) -> InterfaceStats.Counter {
                let per = all[Int(slot) * cpus..<(Int(slot) + 1) * cpus]
                return .init(name: name, packets: per.reduce(0) { $0 + $1.packets }, bytes: per.reduce(0) { $0 + $1.bytes })
            }
            stats.rules = rules.map { counter($0.name, $0.slot) }
            stats.defaultAction = counter(defaultAction, 0)
        }
        return stats
    }

    /// A program's interface counters (dp_stats_v4 or dp_tc_stats), summed over CPUs.
    func programCounters(_ map: String, of name: String) throws(BPFError) -> InterfaceStats.EgressCounters {
        var sum = InterfaceStats.EgressCounters()
        for c in try BPFMap.open(pinned: root.map(map, of: name)).lookupPerCPU(0, as: dp_if_stats.self) {
            sum.packets += c.rx_packets
            sum.bytes += c.rx_bytes
            withUnsafeBytes(of: c.verdict) { raw in
                for i in sum.verdicts.indices { sum.verdicts[i] += raw.load(fromByteOffset: i * 8, as: UInt64.self) }
            }
            withUnsafeBytes(of: c.drop_reason) { raw in
                for i in sum.dropReasons.indices { sum.dropReasons[i] += raw.load(fromByteOffset: i * 8, as: UInt64.self) }
            }
        }
        return sum
    }

    /// `lbs` (from the summary) with their counters and their backends'.
    func balancerCounters(_ lbs: [InterfaceStats.BalancerCounter], _ s: InterfaceState) throws(BPFError) -> [InterfaceStats.BalancerCounter] {
        let vipStats = try BPFMap.open(pinned: root.map(DP_MAP_LB_VSTATS, of: s.name))
        let backendStats = try BPFMap.open(pinned: root.map(DP_MAP_LB_BSTATS, of: s.name))
        func sum(_ map: BPFMap, _ slot: UInt32?) throws(BPFError) -> dp_lb_stats {
            guard let slot else { return dp_lb_stats() }
            return try map.lookupPerCPU(slot, as: dp_lb_stats.self).reduce(into: dp_lb_stats()) { t, c in
                t.packets += c.packets
                t.bytes += c.bytes
                t.connections += c.connections
                t.no_backend += c.no_backend
            }
        }
        var out = lbs
        let health = backendHealth(s)
        for i in out.indices {
            let v = try sum(vipStats, s.vipSlots[out[i].name])
            (out[i].packets, out[i].bytes, out[i].connections, out[i].noBackend) = (v.packets, v.bytes, v.connections, v.no_backend)
            for j in out[i].backends.indices {
                let c = try sum(backendStats, s.backendSlots[InterfaceSummary.backendID(out[i], out[i].backends[j])])
                (out[i].backends[j].packets, out[i].backends[j].bytes, out[i].backends[j].connections) = (c.packets, c.bytes, c.connections)
                out[i].backends[j].healthy = health[InterfaceSummary.backendID(out[i], out[i].backends[j])]?.down != true
            }
        }
        return out
    }
}
