import CLibBPF
import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

/// What an apply did.
public struct ApplyResult: Sendable {
    public var generation: UInt64
    public var changed: Bool
    public var changes: [String]
}

extension Dataplane {
    /// One interface's part of an apply, worked out before anything changes.
    struct InterfacePlan {
        var config: InterfaceConfig
        var ifindex: Int32
        var previous: InterfaceState?
        var slots: [String: UInt32]
        var freshSlots: [UInt32]
        /// The default action changed (or the firewall is new): its counter starts again.
        var resetDefault: Bool
        var table: FirewallTable?
        /// Rate-limit slots by name, the ones new in this apply, and the compiled entries (nil: no limits).
        var limitSlots: [String: UInt32]
        var freshLimitSlots: [UInt32]
        var limits: [dp_rl_entry]?
        /// The dp_rl slot this generation's limits go to: the one the running generation does not use.
        var limitTable: Int
        /// The pinned link is attached to this ifindex in a mode the config accepts.
        var keepsLink: Bool
        // Filled by prepare():
        /// Nodes per firewall table of the program that will run.
        var capacity = 0
        /// A program instance to load: the interface is new, or its table must grow.
        var program: BPFObject?
        /// The running table pin, moved aside while a bigger program replaces it.
        var setAside: String?
        /// The running program, to swap back if the apply fails after replacing it.
        var previousProgram: FileDescriptor?
        var firewallMap: BPFMap?
        var ruleStats: BPFMap?
        var inner: BPFMap?
        var previousInner: BPFMap?
        var limitMap: BPFMap?
        var limitInner: BPFMap?
        var previousLimitInner: BPFMap?
        var mode = XDPAttachMode.native
    }

    /// Makes the kernel match `text`. Atomic per interface: a packet sees the old rule set or
    /// the new one. A failure at any step leaves the running state as it was.
    public func apply(_ text: String) throws(DataplaneError) -> ApplyResult {
        // The file that is running, over intact attachments: nothing to validate, compile
        // or change. (Only reads; an apply racing this one wins either way.)
        let running = access(root.state, F_OK) == 0 ? try state() : nil
        if let running, isUnchanged(running, text) {
            return ApplyResult(generation: running.generation, changed: false, changes: [])
        }
        // The running config is decoded on the other core while this one validates the
        // new file (each takes ~0.4 s at 100,000 rules).
        let runningConfig = running.map { s in Concurrently { () -> Result<Config, ConfigErrors> in
            Result { () throws(ConfigErrors) in try ConfigDecoder.decode(s.configText) } } }
        let config = try Self.validate(text)
        let refused = Self.unsupported(config)
        if !refused.isEmpty { throw .refused(refused) }
        do { try root.create() } catch { throw .kernel(error) }
        let lock: FileDescriptor
        do { lock = try root.lock() } catch { throw .kernel(error) }
        defer { withExtendedLifetime(lock) {} }

        let old = try state()
        if let old, isUnchanged(old, text) {
            return ApplyResult(generation: old.generation, changed: false, changes: [])
        }
        let oldConfig = try old.map { s throws(DataplaneError) in
            // Decoded early, unless another apply got in first.
            if let running, let decoded = runningConfig?.value, running.generation == s.generation, running.configText == s.configText {
                do { return try decoded.get() } catch { throw .state("the applied config no longer decodes: \(error)") }
            }
            return try self.config(of: s)
        }
        var plans = try plan(config, old: old, oldConfig: oldConfig)
        let changes = ConfigDiff.changes(from: oldConfig, to: config)
            + plans.filter { $0.previous != nil && !$0.keepsLink }.map { "~ reattach \($0.config.name)" }
        if let old, old.netns == netns, changes.isEmpty {
            return ApplyResult(generation: old.generation, changed: false, changes: [])
        }

        var created: [String] = []
        do {
            for i in plans.indices {
                if try prepare(&plans[i]) { created.append(plans[i].config.name) }
            }
        } catch {
            plans.forEach(restore)
            for name in created { try? root.removeTree(root.interface(name)) }
            throw error
        }
        let generation = (old?.generation ?? 0) + 1
        try commit(&plans, old: old, created: created) { plans throws(BPFError) in
            let interfaces = plans.map { p in
                InterfaceState(name: p.config.name, ifindex: p.ifindex, mode: p.mode.rawValue, slots: p.slots,
                               firewallNodes: p.table?.nodes.count ?? 0, firewallTrees: p.table?.trees ?? 0,
                               firewallCapacity: p.capacity, limitSlots: p.limitSlots, limitTable: p.limitTable)
            }
            try root.writeState(DataplaneState(generation: generation, netns: netns, configText: text, interfaces: interfaces).encoded)
        }
        return ApplyResult(generation: generation, changed: true, changes: changes)
    }

    /// Resolves interfaces, assigns counter slots and compiles rule sets; touches nothing.
    func plan(_ config: Config, old: DataplaneState?, oldConfig: Config?) throws(DataplaneError) -> [InterfacePlan] {
        var errors: [ConfigError] = []
        var plans: [InterfacePlan] = []
        for (i, iface) in config.interfaces.enumerated() {
            guard let ifindex = Netns.ifindex(of: iface.name) else {
                let place = netns.map { "network namespace \($0)" } ?? "this network namespace"
                errors.append(ConfigError(path: "interfaces[\(i)].name", message: "no interface \"\(iface.name)\" in \(place)"))
                continue
            }
            let previous = old?.interface(iface.name)
            let (slots, fresh) = InterfaceState.assignSlots(iface.firewall?.rules.map(\.name) ?? [], previous: previous?.slots ?? [:])
            let (limitSlots, freshLimits) = InterfaceState.assignSlots(iface.rateLimits.map(\.name), previous: previous?.limitSlots ?? [:])
            let limitTable = previous.map { 1 - $0.limitTable } ?? 0
            let compiled = Self.compile(iface, at: i, slots: slots, limitSlots: limitSlots, limitTable: limitTable, compiler: compiler)
            errors += compiled.errors
            let (table, limits) = (compiled.table, compiled.limits)
            var keepsLink = false
            if let previous, old?.netns == netns, previous.ifindex == ifindex, linkIntact(previous) {
                keepsLink = iface.xdpMode == .auto || iface.xdpMode.rawValue == previous.mode
            }
            let oldDefault = oldConfig?.interfaces.first { $0.name == iface.name }?.firewall?.defaultAction
            plans.append(InterfacePlan(config: iface, ifindex: ifindex, previous: previous, slots: slots,
                                       freshSlots: fresh, resetDefault: oldDefault != iface.firewall?.defaultAction,
                                       table: table, limitSlots: limitSlots, freshLimitSlots: freshLimits, limits: limits,
                                       limitTable: limitTable, keepsLink: keepsLink))
        }
        if !errors.isEmpty { throw .refused(errors) }
        return plans
    }

    func isUnchanged(_ old: DataplaneState, _ text: String) -> Bool {
        old.configText == text && old.netns == netns && old.interfaces.allSatisfy(linkIntact)
    }

    /// The interface's pinned link still runs a program on the ifindex it was attached to.
    func linkIntact(_ iface: InterfaceState) -> Bool {
        guard let link = try? XDPLink.info(pinPath: root.link(iface.name)) else { return false }
        return link.programID != 0 && link.ifindex == UInt32(iface.ifindex)
    }

    /// Loads what a new attachment needs and builds the new generation's table beside the
    /// running one. Returns true when it created the interface's pin directory.
    func prepare(_ plan: inout InterfacePlan) throws(DataplaneError) -> Bool {
        let name = plan.config.name
        let dir = root.interface(name)
        let created = access(dir, F_OK) != 0
        let fwPin = root.map(DP_MAP_FW, of: name)
        let nodes = plan.table?.nodes.count ?? 0
        do throws(BPFError) {
            if created && mkdir(dir, 0o700) != 0 { throw BPFError(.pin(dir), errno: errno) }
            plan.capacity = plan.previous?.firewallCapacity ?? 0
            let load = !plan.keepsLink || nodes > plan.capacity
            if load { plan.capacity = max(plan.capacity, FirewallTable.capacity(for: nodes)) }
            let table = try firewallTable(capacity: plan.capacity, plan.table)
            if plan.table != nil { plan.inner = table }
            if load {
                // A program instance sized for this table (counter maps are reused from
                // their pins); the running table's pin steps aside until commit.
                if access(fwPin, F_OK) == 0 {
                    plan.setAside = fwPin + "_old"
                    if rename(fwPin, plan.setAside!) != 0 { throw BPFError(.pin(fwPin), errno: errno) }
                }
                plan.program = try BPFObject(.xdpIngress, pinRoot: dir, innerMaps: [DP_MAP_FW: table])
                if plan.keepsLink {
                    plan.previousProgram = try XDPLink.program(pinPath: root.link(name))
                }
            } else {
                plan.previousInner = try BPFMap.open(pinned: fwPin).innerMap(at: 0)
            }
            plan.firewallMap = try BPFMap.open(pinned: fwPin)
            plan.ruleStats = try BPFMap.open(pinned: root.map(DP_MAP_RULE_STATS, of: name))
            // The rate-limit maps keep one shape, so every program instance shares the pinned ones.
            plan.limitMap = try BPFMap.open(pinned: root.map(DP_MAP_RL, of: name))
            plan.previousLimitInner = try plan.limitMap!.innerMap(at: UInt32(plan.limitTable))
            plan.limitInner = try plan.limits.map(Self.limitTable)
        } catch {
            restore(plan)
            plan.setAside = nil
            throw .kernel(error)
        }
        return created
    }

    /// A firewall table of `capacity` nodes holding `table` (empty when there is none).
    func firewallTable(capacity: Int, _ table: FirewallTable?) throws(BPFError) -> BPFMap {
        let map = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_fw_tree", keySize: 4,
                                    valueSize: MemoryLayout<dp_fw_node>.size, maxEntries: capacity)
        if let table { try map.fill(table.nodes) }
        return map
    }

    /// The interface's firewall table and rate-limit entries as apply installs them
    /// (nil: none), and what stops them from fitting.
    static func compile(_ iface: InterfaceConfig, at i: Int, slots: [String: UInt32], limitSlots: [String: UInt32],
                        limitTable: Int, compiler: FirewallCompiler) -> (table: FirewallTable?, limits: [dp_rl_entry]?, errors: [ConfigError]) {
        var table: FirewallTable?, limits: [dp_rl_entry]?, errors: [ConfigError] = []
        // Rate limits need a firewall table too: its header names their dp_rl slot.
        if let fw = iface.firewall ?? (iface.rateLimits.isEmpty ? nil : Firewall(defaultAction: .allow, rules: [])) {
            do {
                table = try compiler.compile(fw, slots: slots)
                table?.nodes[0].base = UInt32(limitTable)
            } catch {
                errors.append(ConfigError(path: "interfaces[\(i)].firewall", message: error.message))
            }
        }
        if let top = limitSlots.values.max(), top >= DP_RL_MAX_LIMITS {
            errors.append(ConfigError(path: "interfaces[\(i)].rate_limits", message: "rate limits need slot \(top); at most \(DP_RL_MAX_LIMITS) fit (apply with fewer limits first)"))
        } else if !iface.rateLimits.isEmpty {
            do { limits = try RateLimitCompiler.compile(iface.rateLimits, slots: limitSlots) } catch {
                errors.append(ConfigError(path: "interfaces[\(i)].rate_limits", message: error.message))
            }
        }
        return (table, limits, errors)
    }

    /// A dp_rl table holding `entries`.
    static func limitTable(_ entries: [dp_rl_entry]) throws(BPFError) -> BPFMap {
        let map = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_rl_table", keySize: 4,
                                    valueSize: MemoryLayout<dp_rl_entry>.size, maxEntries: RateLimitCompiler.capacity + 1)
        try map.fill(entries)
        return map
    }

    /// Puts a set-aside table pin back (the apply did not go through).
    func restore(_ plan: InterfacePlan) {
        guard let aside = plan.setAside else { return }
        let pin = root.map(DP_MAP_FW, of: plan.config.name)
        unlink(pin)
        rename(aside, pin)
    }

    /// Flips every interface to its new generation, attaches new interfaces, records the
    /// state and detaches the interfaces the file no longer names. On failure before the
    /// state is recorded, flips back and detaches what it attached.
    func commit(_ plans: inout [InterfacePlan], old: DataplaneState?, created: [String],
                record: ([InterfacePlan]) throws(BPFError) -> Void) throws(DataplaneError) {
        var flipped: [Int] = []
        var attached: [Int] = []
        var replaced: [Int] = []
        do throws(BPFError) {
            for i in plans.indices {
                let p = plans[i]
                for slot in p.freshSlots + (p.resetDefault ? [0] : []) {
                    try p.ruleStats!.updatePerCPU(slot, dp_rule_stats())
                }
                try resetLimitSlots(p)
                // The limits go to the slot no packet reads; the firewall swap switches both.
                try setTree(p.limitMap!, p.limitInner, slot: p.limitTable)
                flipped.append(i)
                try setTree(p.firewallMap!, p.inner)
            }
            for i in plans.indices {
                let name = plans[i].config.name
                if plans[i].keepsLink {
                    plans[i].mode = XDPAttachMode(rawValue: plans[i].previous!.mode) ?? .native
                    if let program = plans[i].program {
                        try XDPLink.replaceProgram(pinPath: root.link(name), programFD: try program.programFD(DP_PROG_XDP), interface: name)
                        replaced.append(i)
                    }
                    continue
                }
                try attach(&plans[i])
                attached.append(i)
            }
            try record(plans)
        } catch {
            for i in flipped {
                try? setTree(plans[i].firewallMap!, plans[i].previousInner)
                try? setTree(plans[i].limitMap!, plans[i].previousLimitInner, slot: plans[i].limitTable)
            }
            for i in attached { try? XDPLink.detach(pinPath: root.link(plans[i].config.name), interface: plans[i].config.name) }
            for i in replaced {
                if let old = plans[i].previousProgram {
                    try? XDPLink.replaceProgram(pinPath: root.link(plans[i].config.name), programFD: old.raw, interface: plans[i].config.name)
                }
            }
            plans.forEach(restore)
            for name in created { try? root.removeTree(root.interface(name)) }
            throw .kernel(error)
        }
        for p in plans { if let aside = p.setAside { unlink(aside) } }
        let kept = Set(plans.map(\.config.name))
        for gone in old?.interfaces ?? [] where !kept.contains(gone.name) {
            do {
                try XDPLink.detach(pinPath: root.link(gone.name), interface: gone.name)
                try root.removeTree(root.interface(gone.name))
            } catch { throw .kernel(error) }
        }
    }

    /// Fresh rate-limit slots start with zero counters, a full bucket and no per-source
    /// buckets (a slot may have belonged to a limit removed earlier).
    func resetLimitSlots(_ p: InterfacePlan) throws(BPFError) {
        guard !p.freshLimitSlots.isEmpty else { return }
        let name = p.config.name
        let stats = try BPFMap.open(pinned: root.map(DP_MAP_RL_STATS, of: name))
        let buckets = try BPFMap.open(pinned: root.map(DP_MAP_RL_BUCKETS, of: name))
        for slot in p.freshLimitSlots {
            try stats.updatePerCPU(slot, dp_rl_stats())
            try buckets.update(slot, dp_rl_bucket())
        }
        let fresh = Set(p.freshLimitSlots)
        let sources = try BPFMap.open(pinned: root.map(DP_MAP_RL_SOURCES, of: name))
        for key in try sources.keys(as: dp_rl_source_key.self) where fresh.contains(key.slot) {
            try sources.delete(key)
        }
    }

    /// Points a slot of dp_fw (or dp_rl) at a table, or empties it (no firewall: every packet passes).
    func setTree(_ outer: BPFMap, _ inner: BPFMap?, slot: Int = 0) throws(BPFError) {
        if let inner {
            try outer.update(UInt32(slot), inner.fd.raw)
        } else {
            try outer.delete(UInt32(slot))
        }
    }

    /// Attaches the plan's program, replacing a stale link; `auto` falls back to generic.
    func attach(_ plan: inout InterfacePlan) throws(BPFError) {
        let name = plan.config.name
        let link = root.link(name)
        try XDPLink.detach(pinPath: link, interface: name)
        let prog = try plan.program!.programFD(DP_PROG_XDP)
        let modes: [XDPAttachMode] = switch plan.config.xdpMode {
        case .native: [.native]
        case .generic: [.generic]
        case .auto: [.native, .generic]
        }
        var lastError: BPFError?
        for mode in modes {
            do {
                try XDPLink.attach(programFD: prog, ifindex: plan.ifindex, interface: name, mode: mode, pinPath: link)
                plan.mode = mode
                return
            } catch {
                lastError = error
                if error.errno == EBUSY || error.errno == EEXIST { break }
            }
        }
        throw lastError!
    }
}
