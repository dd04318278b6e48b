import CLibBPF
import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

/// One health check's outcome, as the agent reports it.
public struct HealthCheckResult: Sendable {
    public var interface: String
    /// LoadBalancerCompiler.backendID.
    public var backendID: String
    /// 0 passed; > 0 the HTTP status that failed; < 0 -errno.
    public var result: Int32
    public var latencyMicroseconds: UInt32
    /// CLOCK_REALTIME, ns.
    public var checkedAt: UInt64

    public init(interface: String, backendID: String, result: Int32, latencyMicroseconds: UInt32, checkedAt: UInt64) {
        (self.interface, self.backendID, self.result, self.latencyMicroseconds) = (interface, backendID, result, latencyMicroseconds)
        self.checkedAt = checkedAt
    }
}

/// A backend that went down or came back.
public struct HealthChange: Sendable, Equatable {
    public var interface: String
    public var backendID: String
    public var down: Bool
}

/// What the health table holds of one backend, for the reports.
public struct BackendHealth: Sendable, Equatable {
    public var down: Bool
    public var checks: UInt32
    /// Nil: never checked.
    public var checkedAt: UInt64?
    public var result: Int32
    public var latencyMicroseconds: UInt32

    init(_ e: dp_lb_health) {
        down = e.down != 0
        checks = e.checks
        checkedAt = e.checked_ns == 0 ? nil : e.checked_ns
        result = e.result
        latencyMicroseconds = e.latency_us
    }
}

extension Dataplane {
    /// An interface's health table (dp_lb_health); with `create`, made and pinned when
    /// missing. Nil: none (no check ever ran there: every backend counts as up).
    func healthTable(_ interface: String, create: Bool) throws(BPFError) -> BPFMap? {
        let path = root.map(DP_MAP_LB_HEALTH, of: interface)
        if let map = try? BPFMap.open(pinned: path) { return map }
        guard create else { return nil }
        let map = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: DP_MAP_LB_HEALTH, keySize: 4,
                                    valueSize: MemoryLayout<dp_lb_health>.size, maxEntries: Int(DP_LB_MAX_BACKENDS))
        try map.pin(at: path)
        return map
    }

    /// The health of `s`'s backends by backendID, from its table (empty: none).
    func backendHealth(_ s: InterfaceState) -> [String: BackendHealth] {
        guard let table = try? healthTable(s.name, create: false) else { return [:] }
        var out: [String: BackendHealth] = [:]
        for (id, slot) in s.backendSlots {
            if let e: dp_lb_health = try? table.lookup(slot) { out[id] = BackendHealth(e) }
        }
        return out
    }

    /// The backends the health tables hold down, by interface: what an apply keeps out
    /// of the Maglev tables.
    func downBackends(_ state: DataplaneState?) -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for s in state?.interfaces ?? [] {
            let down = backendHealth(s).filter(\.value.down).map(\.key)
            if !down.isEmpty { out[s.name] = Set(down) }
        }
        return out
    }

    /// Records check results: each backend's last result and its run of like outcomes;
    /// one that fails `fall` checks in a row goes down, one that is down comes back after
    /// `rise` passes. When a backend goes down or comes back, its interface's
    /// load-balancer tables are compiled again without (with) it and swapped in: a
    /// generation that changes only them, so its connections stay and only new flows
    /// move. `rise` and `fall` are the running config's; results for backends it does
    /// not check (any more) are dropped. Takes the pin root's lock. Returns the changes.
    public func recordHealth(_ results: [HealthCheckResult]) throws(DataplaneError) -> [HealthChange] {
        guard !results.isEmpty else { return [] }
        let lock = try lockRoot()
        defer { withExtendedLifetime(lock) {} }
        guard let (state, config) = try running() else { return [] }
        var changes: [HealthChange] = []
        do {
            for (name, batch) in Dictionary(grouping: results, by: \.interface) {
                guard let s = state.interfaces.first(where: { $0.name == name }),
                      let iface = config.interfaces.first(where: { $0.name == name }),
                      let table = try healthTable(name, create: true) else { continue }
                let checks = checkedBackends(iface, of: state)
                var entries: [UInt32: dp_lb_health] = [:]
                var changed = false
                for r in batch {
                    guard let slot = s.backendSlots[r.backendID], let check = checks[r.backendID] else { continue }
                    var e: dp_lb_health
                    if let known = entries[slot] { e = known } else { e = try entry(table, slot) }
                    let passed = r.result == 0
                    e.streak = e.checks > 0 && (e.result == 0) == passed ? UInt8(min(255, Int(e.streak) + 1)) : 1
                    (e.checked_ns, e.result, e.latency_us) = (r.checkedAt, r.result, r.latencyMicroseconds)
                    e.checks &+= 1
                    if e.down == 0 && !passed && UInt32(e.streak) >= check.fall || e.down != 0 && passed && UInt32(e.streak) >= check.rise {
                        e.down = passed ? 0 : 1
                        changed = true
                        changes.append(HealthChange(interface: name, backendID: r.backendID, down: !passed))
                    }
                    entries[slot] = e
                }
                // The tables change first: a report that says "down" finds the backend out
                // of them already.
                if changed {
                    var down = Set<UInt32>()
                    for slot in s.backendSlots.values {
                        let e: dp_lb_health
                        if let known = entries[slot] { e = known } else { e = try entry(table, slot) }
                        if e.down != 0 { down.insert(slot) }
                    }
                    try swapBalancers(of: s, iface, down: down)
                }
                for (slot, e) in entries { try table.update(slot, e) }
            }
        } catch {
            throw .kernel(error)
        }
        return changes
    }

    /// A slot's entry in a health table (zero: up, never checked).
    private func entry(_ table: BPFMap, _ slot: UInt32) throws(BPFError) -> dp_lb_health {
        guard let e: dp_lb_health = try table.lookup(slot) else { return dp_lb_health() }
        return e
    }

    /// Compiles interface `s`'s load balancers (`iface`'s) again with the backend slots
    /// `down` left out, and swaps the new
    /// tables in beside the running generation's others. Throws when it cannot: the
    /// caller then records nothing, and the next result tries again.
    private func swapBalancers(of s: InterfaceState, _ iface: InterfaceConfig, down: Set<UInt32>) throws(BPFError) {
        guard let maps = try GenerationMaps.pinned(in: root.interface(s.name)), let gen = try maps.running(), gen.slot < DP_GEN_SLOTS else {
            throw BPFError(.openPin(root.interface(s.name)), errno: ENOENT)
        }
        let cache = maglevCaches[s.name] ?? MaglevCache()
        maglevCaches[s.name] = cache
        let compiled: LoadBalancerTables
        do {
            compiled = try LoadBalancerCompiler.compile(iface.loadBalancers, vipSlots: s.vipSlots, backendSlots: s.backendSlots,
                                                        down: down, cache: cache)
        } catch {
            // The running config compiled when it was applied; only its slots could fail.
            throw BPFError(.mapUpdate(DP_MAP_LB_RING), errno: E2BIG, log: [error.message])
        }
        var tables = try maps.runningTables()
        for (kind, table) in try Self.balancerTables(compiled) { tables[kind] = table }
        try maps.stage(tables, slot: 1 - gen.slot)
        try maps.flip(slot: 1 - gen.slot, tables: tables.keys, flags: gen.tables & DP_GEN_NAT_PEERS.rawValue)
    }

    /// The health check of every checked backend of `iface`, by backendID, kept while
    /// `state` runs (the agent records results 50 times a second).
    private func checkedBackends(_ iface: InterfaceConfig, of state: DataplaneState) -> [String: LoadBalancer.HealthCheck] {
        if let cached = checkedCache[iface.name], cached.generation == state.generation { return cached.checks }
        var checks: [String: LoadBalancer.HealthCheck] = [:]
        for lb in iface.loadBalancers {
            guard let check = lb.healthCheck else { continue }
            for b in lb.backends { checks[LoadBalancerCompiler.backendID(lb, b)] = check }
        }
        checkedCache[iface.name] = (state.generation, checks)
        return checks
    }

    /// The state and its config as they are now, read and decoded again only when the
    /// state changed (its map id): the agent records checks every second. Nil: nothing
    /// applied.
    public func running() throws(DataplaneError) -> (DataplaneState, Config)? {
        guard let id = root.stateID() else { return nil }
        if let cached = runningCache, cached.id == id { return (cached.state, cached.config) }
        guard let state = try state() else { return nil }
        let config = try self.config(of: state)
        runningCache = (id, state, config)
        return (state, config)
    }
}
