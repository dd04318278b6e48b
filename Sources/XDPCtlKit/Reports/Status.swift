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
    /// The tc egress program's id (nil: none attached, the interface has no NAT).
    public var tcProgramID: UInt32?
    public var natRules: Int
    /// The XDP program translates connections of other interfaces' NAT rules (the fast path).
    public var natFastPath: Bool = false
    /// What a veth's peer lacks for XDP forwarding, and the command that gives it.
    public var vethAdvice: String?
    /// NAT connections (each has two entries) in the established and the new table.
    public var natConnections: Int
    public var natNew: Int
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
    /// The last health check of every backend that was checked, load balancer by
    /// load balancer.
    public var health: [BackendCheck] = []
    /// Kernel memory of the interface's maps, bytes, as the kernel accounts it.
    public var mapMemory: Int
    /// The part of it the spare firewall table takes (the table the last swap retired,
    /// which the next patch fills).
    public var spareMemory: Int
}

/// `x` with `places` decimals (no Foundation here).
func decimal(_ x: Double, _ places: Int) -> String {
    var scale = 1
    for _ in 0..<places { scale *= 10 }
    let n = Int((x * Double(scale)).rounded())
    let fraction = String(abs(n) % scale)
    return "\(n < 0 ? "-" : "")\(abs(n) / scale)" + (places == 0 ? "" : "." + String(repeating: "0", count: places - fraction.count) + fraction)
}

/// A backend's last health check, as `status` shows it.
public struct BackendCheck: Sendable {
    public var loadBalancer: String
    public var backend: String
    public var healthy: Bool
    public var checks: UInt32
    /// 0 passed; > 0 the HTTP status that failed; < 0 -errno.
    public var result: Int32
    public var secondsAgo: Double
    public var latencyMilliseconds: Double

    public var resultText: String {
        result == 0 ? "passed" : result > 0 ? "failed: HTTP status \(result)" : "failed: \(String(cString: strerror(-result)))"
    }
}

public struct StatusReport: Sendable {
    public var pinRoot: String
    public var netns: String?
    public var generation: UInt64
    public var interfaces: [InterfaceStatus]
    /// An agent serves the pin root.
    public var agentRuns = false
    /// `xdpctl drain` drained the node: no VIP is announced.
    public var drained = false
    /// The programs record packets for a capture (or a replay).
    public var captureRunning = false

    public var json: String {
        JSONOutput.render(.obj([
            "pin_root": .string(pinRoot),
            "netns": netns.map { .string($0) } ?? .null,
            "generation": .int(generation),
            "agent_running": .bool(agentRuns),
            "drained": .bool(drained),
            "capture_running": .bool(captureRunning),
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
                    "tc_egress": i.tcProgramID.map { .obj(["program_id": .int($0)]) } ?? .null,
                    "nat_fast_path": .bool(i.natFastPath),
                    "veth_advice": i.vethAdvice.map { .string($0) } ?? .null,
                    "nat": .obj(["rules": .int(i.natRules), "connections": .int(i.natConnections),
                                 "connections_max": .int(Int(DP_CT_MAX) / 2), "new": .int(i.natNew),
                                 "new_max": .int(Int(DP_CT_NEW_MAX) / 2)]),
                    "load_balancers": .obj(["balancers": .int(i.loadBalancers), "connections": .int(i.connections),
                                            "connections_max": .int(Int(DP_CT_MAX) / 2), "half_open": .int(i.halfOpen),
                                            "half_open_max": .int(Int(DP_CT_NEW_MAX) / 2)]),
                    "health": .array(i.health.map { h in
                        .obj(["load_balancer": .string(h.loadBalancer), "backend": .string(h.backend), "healthy": .bool(h.healthy),
                              "checks": .int(h.checks), "last_result": .string(h.resultText),
                              "last_check_seconds_ago": .number(decimal(h.secondsAgo, 3)),
                              "latency_ms": .number(decimal(h.latencyMilliseconds, 3))])
                    }),
                    "maps": .obj(["rule_slots_used": .int(i.slotsUsed), "rule_slots_max": .int(Int(DP_MAX_RULES)),
                                  "memory_bytes": .int(i.mapMemory), "spare_table_bytes": .int(i.spareMemory)]),
                ])
            }),
        ]), indent: "  ")
    }

    public var text: String {
        var out = "pin root \(pinRoot)\(netns.map { ", network namespace \($0)" } ?? ""), config generation \(generation)\(agentRuns ? ", an agent serves it" : "")\n"
        if drained { out += "drained: no VIP is announced (xdpctl drain --undo announces again)\n" }
        if captureRunning { out += "capture running: the programs copy matching packets into the capture ring\n" }
        for i in interfaces {
            let state = i.linkIntact ? "attached \(i.mode ?? "?") (xdp_mode \(i.requestedMode)), program id \(i.programID)" : "NOT attached (the interface was removed or the link detached; apply again)"
            out += "\(i.name) (ifindex \(i.ifindex)): \(state)\n"
            let patched = i.firewallPatchTrees == 0 ? "" : " + \(i.firewallPatchTrees) patch tree\(i.firewallPatchTrees == 1 ? "" : "s") (apply --full-compile merges them)"
            out += "  firewall  \(i.firewallRules) rules -> \(i.firewallTrees) trees\(patched), \(i.firewallNodes)/\(i.firewallCapacity) nodes\n"
            if i.rateLimits > 0 {
                out += "  limits    \(i.rateLimits) rate limit\(i.rateLimits == 1 ? "" : "s"), \(i.sourceBuckets)/\(DP_RL_MAX_SOURCES) per-source buckets\n"
            }
            if let tc = i.tcProgramID {
                out += "  tc egress attached (tcx), program id \(tc)\n"
            }
            if let advice = i.vethAdvice {
                out += "  veth      \(advice)\n"
            }
            if i.natFastPath {
                out += "  nat fast path: established connections of NAT rules (any interface's) translated and sent on here\n"
            }
            if i.natRules > 0 {
                out += "  nat       \(i.natRules) rule\(i.natRules == 1 ? "" : "s"), \(i.natConnections)/\(DP_CT_MAX / 2) connections, \(i.natNew)/\(DP_CT_NEW_MAX / 2) new\n"
            }
            if i.loadBalancers > 0 {
                out += "  balance   \(i.loadBalancers) load balancer\(i.loadBalancers == 1 ? "" : "s"), \(i.connections)/\(DP_CT_MAX / 2) connections, \(i.halfOpen)/\(DP_CT_NEW_MAX / 2) half-open\n"
            }
            for h in i.health {
                out += "  health    \(h.loadBalancer) \(h.backend) \(h.healthy ? "up" : "DOWN"): \(h.resultText) "
                    + "\(decimal(h.secondsAgo, 1)) s ago in \(decimal(h.latencyMilliseconds, 1)) ms (\(h.checks) checks)\n"
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
        guard let state = try reportState() else { return nil }
        try enterRecordedNetns(state)
        let wallClock = Self.now(CLOCK_REALTIME)
        // Connections per interface and kind, from the table all interfaces share
        // (limits in the report are the shared table's).
        var entries: [(key: dp_ct_key, entry: dp_ct_entry, new: Bool)] = []
        if let table = try? ConnectionTable(root: root), let all = try? table.entries() { entries = all.filter { $0.entry.reply == 0 } }
        func count(_ s: InterfaceState, _ kind: (dp_ct_entry) -> Bool, new: Bool) -> Int {
            entries.count { $0.new == new && $0.entry.ifindex == UInt32(bitPattern: s.ifindex) && kind($0.entry) }
        }
        let forwards = state.interfaces.contains { $0.summary.map { !$0.balancers.isEmpty || !$0.nat.isEmpty } ?? false }
        let advice = forwards ? Self.vethAdvice(state.interfaces.map(\.name), netns: state.netns) : [:]
        let interfaces = state.interfaces.map { s in
            let link = try? XDPLink.info(pinPath: root.link(s.name))
            let live = linkIntact(s)
            let query = live ? try? XDPLink.attachedMode(ifindex: s.ifindex, interface: s.name) : nil
            let summary = s.summary
            let open = { (name: String) in try? BPFMap.open(pinned: self.root.map(name, of: s.name)) }
            let maps = [DP_MAP_STATS, DP_MAP_TC_STATS, DP_MAP_RULE_STATS, DP_MAP_RL_BUCKETS, DP_MAP_RL_SOURCES, DP_MAP_RL_STATS,
                        DP_MAP_LB_BACKENDS, DP_MAP_LB_VSTATS, DP_MAP_LB_BSTATS].compactMap(open)
            // The root, the table maps and the tables the running generation uses.
            let generation = try? GenerationMaps(pinDirectory: root.interface(s.name))
            let tables = generation.map { g in
                [g.root] + GenerationTable.allCases.map(g.map) + Array(((try? g.runningTables()) ?? [:]).values)
            } ?? []
            let spare = (try? BPFMap.open(pinned: root.spareTable(of: s.name)))?.memoryBytes() ?? 0
            let memory = (maps + tables).reduce(spare) { $0 + $1.memoryBytes() }
            let running = (try? generation?.running()) ?? nil
            var status = InterfaceStatus(name: s.name, ifindex: s.ifindex, mode: query?.mode?.rawValue,
                                   requestedMode: summary?.xdpMode ?? "auto",
                                   programID: link?.programID ?? 0, linkIntact: live,
                                   tcProgramID: (try? XDPLink.info(pinPath: root.tcLink(s.name)))?.programID,
                                   natRules: summary?.nat.count ?? 0,
                                   natConnections: count(s, \.isNAT, new: false), natNew: count(s, \.isNAT, new: true),
                                   firewallRules: s.slots.count,
                                   firewallNodes: s.firewallNodes, firewallTrees: s.firewallTrees, firewallPatchTrees: s.firewallPatchTrees,
                                   firewallCapacity: s.firewallCapacity,
                                   slotsUsed: s.slots.count + 1, rateLimits: summary?.limits.count ?? 0,
                                   sourceBuckets: (try? open(DP_MAP_RL_SOURCES)?.keys(as: dp_rl_source_key.self).count) ?? 0,
                                   loadBalancers: summary?.balancers.count ?? 0,
                                   connections: count(s, \.isBalanced, new: false), halfOpen: count(s, \.isBalanced, new: true),
                                   mapMemory: memory, spareMemory: spare)
            status.natFastPath = (running?.tables ?? 0) & DP_GEN_NAT_PEERS.rawValue != 0
            status.vethAdvice = advice[s.name]
            status.health = checks(s, now: wallClock)
            return status
        }
        var report = StatusReport(pinRoot: root.path, netns: state.netns, generation: state.generation, interfaces: interfaces)
        (report.agentRuns, report.drained, report.captureRunning) = (root.agentRuns, drained, captureRunning)
        return report
    }

    /// `s`'s backends that were checked, in the order of its load balancers.
    func checks(_ s: InterfaceState, now: UInt64) -> [BackendCheck] {
        let health = backendHealth(s)
        return s.summary?.balancers.flatMap { lb in
            lb.backends.compactMap { b -> BackendCheck? in
                guard let h = health[InterfaceSummary.backendID(lb, b)], let at = h.checkedAt else { return nil }
                return BackendCheck(loadBalancer: lb.name, backend: LoadBalancer.endpoint(b.address, Int(b.port)),
                                    healthy: !h.down, checks: h.checks, result: h.result,
                                    secondsAgo: now > at ? Double(now - at) / 1e9 : 0, latencyMilliseconds: Double(h.latencyMicroseconds) / 1000)
            }
        } ?? []
    }
}
