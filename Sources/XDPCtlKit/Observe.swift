import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

/// What `status` shows of one interface.
public struct InterfaceStatus: Sendable {
    public var name: String
    public var ifindex: Int32
    /// The mode the kernel reports now (nil: no program attached any more).
    public var mode: String?
    public var requestedMode: String
    public var programID: UInt32
    public var linkIntact: Bool
    public var firewallRules: Int
    public var firewallNodes: Int
    public var firewallTrees: Int
    public var firewallPatchTrees: Int
    public var firewallCapacity: Int
    public var slotsUsed: Int
    public var rateLimits: Int
    /// Per-source buckets in use (all limits together).
    public var sourceBuckets: Int
    public var loadBalancers: Int
    /// Entries in the connection table and the half-open table.
    public var connections: Int
    public var halfOpen: Int
    /// Kernel memory of the interface's maps, bytes, as the kernel accounts it.
    public var mapMemory: Int
    /// The part of it the spare firewall table takes (the table the last swap retired,
    /// which the next patch fills).
    public var spareMemory: Int
}

public struct StatusReport: Sendable {
    public var pinRoot: String
    public var netns: String?
    public var generation: UInt64
    public var interfaces: [InterfaceStatus]

    public var json: String {
        JSONOutput.render(.obj([
            "pin_root": .string(pinRoot),
            "netns": netns.map { .string($0) } ?? .null,
            "generation": .int(generation),
            "interfaces": .array(interfaces.map { i in
                .obj([
                    "name": .string(i.name), "ifindex": .int(i.ifindex),
                    "mode": i.mode.map { .string($0) } ?? .null, "xdp_mode": .string(i.requestedMode),
                    "program_id": .int(i.programID), "attached": .bool(i.linkIntact),
                    "firewall": .obj(["rules": .int(i.firewallRules), "tree_nodes": .int(i.firewallNodes),
                                      "tree_capacity": .int(i.firewallCapacity), "trees": .int(i.firewallTrees),
                                      "patch_trees": .int(i.firewallPatchTrees)]),
                    "rate_limits": .obj(["limits": .int(i.rateLimits), "source_buckets": .int(i.sourceBuckets),
                                         "source_buckets_max": .int(Int(DP_RL_MAX_SOURCES))]),
                    "load_balancers": .obj(["balancers": .int(i.loadBalancers), "connections": .int(i.connections),
                                            "connections_max": .int(Int(DP_LB_CT_MAX)), "half_open": .int(i.halfOpen),
                                            "half_open_max": .int(Int(DP_LB_HALF_OPEN_MAX))]),
                    "maps": .obj(["rule_slots_used": .int(i.slotsUsed), "rule_slots_max": .int(Int(DP_MAX_RULES)),
                                  "memory_bytes": .int(i.mapMemory), "spare_table_bytes": .int(i.spareMemory)]),
                ])
            }),
        ]), indent: "  ")
    }

    public var text: String {
        var out = "pin root \(pinRoot)\(netns.map { ", network namespace \($0)" } ?? ""), config generation \(generation)\n"
        for i in interfaces {
            let state = i.linkIntact ? "attached \(i.mode ?? "?") (xdp_mode \(i.requestedMode)), program id \(i.programID)" : "NOT attached (the interface was removed or the link detached; apply again)"
            out += "\(i.name) (ifindex \(i.ifindex)): \(state)\n"
            let patched = i.firewallPatchTrees == 0 ? "" : " + \(i.firewallPatchTrees) patch tree\(i.firewallPatchTrees == 1 ? "" : "s") (apply --full-compile merges them)"
            out += "  firewall  \(i.firewallRules) rules -> \(i.firewallTrees) trees\(patched), \(i.firewallNodes)/\(i.firewallCapacity) nodes\n"
            if i.rateLimits > 0 {
                out += "  limits    \(i.rateLimits) rate limit\(i.rateLimits == 1 ? "" : "s"), \(i.sourceBuckets)/\(DP_RL_MAX_SOURCES) per-source buckets\n"
            }
            if i.loadBalancers > 0 {
                out += "  balance   \(i.loadBalancers) load balancer\(i.loadBalancers == 1 ? "" : "s"), \(i.connections)/\(DP_LB_CT_MAX) connections, \(i.halfOpen)/\(DP_LB_HALF_OPEN_MAX) half-open\n"
            }
            out += "  maps      rule slots \(i.slotsUsed)/\(DP_MAX_RULES), kernel memory \(i.mapMemory / 1024) KiB\(i.spareMemory == 0 ? "" : " (\(i.spareMemory / 1024) KiB of it a spare table for the next change)")\n"
        }
        if interfaces.isEmpty { out += "no interfaces\n" }
        return out
    }
}

extension Dataplane {
    /// What is attached where; nil when nothing is applied under the pin root.
    public func status() throws(DataplaneError) -> StatusReport? {
        guard let state = try state() else { return nil }
        try enterRecordedNetns(state)
        let config = try config(of: state)
        let interfaces = state.interfaces.map { s in
            let link = try? XDPLink.info(pinPath: root.link(s.name))
            let live = linkIntact(s)
            let query = live ? try? XDPLink.attachedMode(ifindex: s.ifindex, interface: s.name) : nil
            let iface = config.interfaces.first { $0.name == s.name }
            let rules = iface?.firewall?.rules.count ?? 0
            let open = { (name: String) in try? BPFMap.open(pinned: self.root.map(name, of: s.name)) }
            let maps = [DP_MAP_STATS, DP_MAP_RULE_STATS, DP_MAP_RL_BUCKETS, DP_MAP_RL_SOURCES, DP_MAP_RL_STATS,
                        DP_MAP_LB_BACKENDS, DP_MAP_LB_VSTATS, DP_MAP_LB_BSTATS, DP_MAP_LB_CT, DP_MAP_LB_HALF].compactMap(open)
            // The root, the table maps and the tables the running generation uses.
            let generation = try? GenerationMaps(pinDirectory: root.interface(s.name))
            let tables = generation.map { g in
                [g.root] + GenerationTable.allCases.map(g.map) + Array(((try? g.runningTables()) ?? [:]).values)
            } ?? []
            let spare = (try? BPFMap.open(pinned: root.spareTable(of: s.name)))?.memoryBytes() ?? 0
            let memory = (maps + tables).reduce(spare) { $0 + $1.memoryBytes() }
            return InterfaceStatus(name: s.name, ifindex: s.ifindex, mode: query?.mode?.rawValue,
                                   requestedMode: iface?.xdpMode.rawValue ?? "auto",
                                   programID: link?.programID ?? 0, linkIntact: live, firewallRules: rules,
                                   firewallNodes: s.firewallNodes, firewallTrees: s.firewallTrees, firewallPatchTrees: s.firewallPatchTrees,
                                   firewallCapacity: s.firewallCapacity,
                                   slotsUsed: s.slots.count + 1, rateLimits: iface?.rateLimits.count ?? 0,
                                   sourceBuckets: (try? open(DP_MAP_RL_SOURCES)?.keys(as: dp_rl_source_key.self).count) ?? 0,
                                   loadBalancers: iface?.loadBalancers.count ?? 0,
                                   connections: (try? open(DP_MAP_LB_CT)?.keys(as: dp_lb_flow.self).count) ?? 0,
                                   halfOpen: (try? open(DP_MAP_LB_HALF)?.keys(as: dp_lb_flow.self).count) ?? 0,
                                   mapMemory: memory, spareMemory: spare)
        }
        return StatusReport(pinRoot: root.path, netns: state.netns, generation: state.generation, interfaces: interfaces)
    }

    /// Counters of every attached interface (or one), summed over CPUs; nil when nothing
    /// is applied under the pin root.
    public func stats(interface: String? = nil) throws(DataplaneError) -> (generation: UInt64, interfaces: [InterfaceStats])? {
        guard let state = try state() else { return nil }
        let config = try config(of: state)
        var out: [InterfaceStats] = []
        for s in state.interfaces where interface == nil || s.name == interface {
            var stats = InterfaceStats(name: s.name, ifindex: s.ifindex)
            do {
                let counters = try BPFMap.open(pinned: root.map(DP_MAP_STATS, of: s.name)).lookupPerCPU(0, as: dp_if_stats.self)
                for c in counters {
                    stats.rxPackets += c.rx_packets
                    stats.rxBytes += c.rx_bytes
                    withUnsafeBytes(of: c.verdict) { raw in
                        for i in stats.verdicts.indices { stats.verdicts[i] += raw.load(fromByteOffset: i * 8, as: UInt64.self) }
                    }
                    withUnsafeBytes(of: c.drop_reason) { raw in
                        for i in stats.dropReasons.indices { stats.dropReasons[i] += raw.load(fromByteOffset: i * 8, as: UInt64.self) }
                    }
                }
                let iface = config.interfaces.first { $0.name == s.name }
                if let limits = iface?.rateLimits, !limits.isEmpty {
                    let limitMap = try BPFMap.open(pinned: root.map(DP_MAP_RL_STATS, of: s.name))
                    for limit in limits {
                        let per = try limitMap.lookupPerCPU(s.limitSlots[limit.name] ?? 0, as: dp_rl_stats.self)
                        stats.rateLimits.append(.init(name: limit.name, passed: per.reduce(0) { $0 + $1.passed },
                                                      dropped: per.reduce(0) { $0 + $1.dropped }))
                    }
                }
                if let lbs = iface?.loadBalancers, !lbs.isEmpty {
                    stats.loadBalancers = try balancerCounters(lbs, s)
                }
                if let fw = iface?.firewall {
                    let ruleMap = try BPFMap.open(pinned: root.map(DP_MAP_RULE_STATS, of: s.name))
                    func counter(_ name: String, _ slot: UInt32) throws(BPFError) -> InterfaceStats.Counter {
                        let per = try ruleMap.lookupPerCPU(slot, as: dp_rule_stats.self)
                        return .init(name: name, packets: per.reduce(0) { $0 + $1.packets }, bytes: per.reduce(0) { $0 + $1.bytes })
                    }
                    let slots = s.slots.byName
                    for rule in fw.rules { stats.rules.append(try counter(rule.name, slots[rule.name] ?? 0)) }
                    stats.defaultAction = try counter(fw.defaultAction.rawValue, 0)
                }
            } catch {
                throw .kernel(error)
            }
            out.append(stats)
        }
        if let interface, out.isEmpty {
            throw .state("interface \"\(interface)\" is not attached by xdpctl (attached: \(state.interfaces.map(\.name).joined(separator: ", ")))")
        }
        return (state.generation, out)
    }

    func balancerCounters(_ lbs: [LoadBalancer], _ s: InterfaceState) throws(BPFError) -> [InterfaceStats.BalancerCounter] {
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
        var out: [InterfaceStats.BalancerCounter] = []
        for lb in lbs {
            var counter = InterfaceStats.BalancerCounter(name: lb.name, vip: "\(lb.vip)", proto: "\(lb.proto)", port: lb.port, backends: [])
            let v = try sum(vipStats, s.vipSlots[lb.name])
            (counter.packets, counter.bytes, counter.connections, counter.noBackend) = (v.packets, v.bytes, v.connections, v.no_backend)
            for b in lb.backends {
                var backend = InterfaceStats.BalancerCounter.Backend(address: "\(b.address)", port: b.port, weight: b.weight, state: b.state.rawValue)
                let c = try sum(backendStats, s.backendSlots[LoadBalancerCompiler.backendID(lb, b)])
                (backend.packets, backend.bytes, backend.connections) = (c.packets, c.bytes, c.connections)
                counter.backends.append(backend)
            }
            out.append(counter)
        }
        return out
    }

    /// The connection tables of every interface with load balancers: established
    /// connections, then half-open flows; nil when nothing is applied under the pin root.
    public func conntrack() throws(DataplaneError) -> [ConnectionEntry]? {
        guard let state = try state() else { return nil }
        let config = try config(of: state)
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nowNs = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
        var out: [ConnectionEntry] = []
        for s in state.interfaces {
            guard let iface = config.interfaces.first(where: { $0.name == s.name }), !iface.loadBalancers.isEmpty else { continue }
            let names = Dictionary(s.vipSlots.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
            do {
                let backends = try BPFMap.open(pinned: root.map(DP_MAP_LB_BACKENDS, of: s.name))
                for (map, established) in [(DP_MAP_LB_CT, true), (DP_MAP_LB_HALF, false)] {
                    let table = try BPFMap.open(pinned: root.map(map, of: s.name))
                    for key in try table.keys(as: dp_lb_flow.self) {
                        guard let conn: dp_lb_conn = try table.lookup(key) else { continue }
                        let b: dp_lb_backend? = try backends.lookup(conn.backend)
                        out.append(ConnectionEntry(
                            interface: s.name, loadBalancer: names[conn.vip] ?? "?", proto: IPProtocol(key.proto).description,
                            client: IPAddress(family: key.family, tuple: key.src), clientPort: key.sport,
                            vip: IPAddress(family: key.family, tuple: key.dst), vipPort: key.dport,
                            backend: b.map { IPAddress(family: $0.family, tuple: $0.addr) }, backendPort: b?.port ?? 0,
                            state: !established ? .halfOpen : (b?.epoch == conn.epoch && conn.epoch != 0 ? .established : .stale),
                            ageSeconds: nowNs >= conn.created_ns ? Double(nowNs - conn.created_ns) / 1e9 : 0))
                    }
                }
            } catch { throw .kernel(error) }
        }
        return out
    }

    /// Detaches everything under the pin root and removes the pins.
    public func down() throws(DataplaneError) -> [String] {
        guard access(root.path, F_OK) == 0 else { return [] }
        let lock: FileDescriptor
        do { lock = try root.lock() } catch { throw .kernel(error) }
        defer { withExtendedLifetime(lock) {} }
        let names = root.interfaceNames()
        do {
            for name in names {
                try XDPLink.detach(pinPath: root.link(name), interface: name)
                try root.removeTree(root.interface(name))
            }
            try root.removeTree(root.path)
        } catch { throw .kernel(error) }
        return names
    }
}
