import CLibBPF
import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

/// The reply translations (backend endpoint to VIP endpoint) an apply installs, shared
/// by every interface: new ones go in before the swap, stale ones leave after it.
struct Replies {
    var root: PinRoot
    var new: [(backend: dp_lb_endpoint, vip: dp_lb_endpoint)]
    var old: [(backend: dp_lb_endpoint, vip: dp_lb_endpoint)]

    /// Writes `entries`; with `removingOthers`, removes every other entry, else leaves
    /// them (and the source ports they listen on: `alsoListed`) in place.
    func write(_ entries: [(backend: dp_lb_endpoint, vip: dp_lb_endpoint)], removingOthers: Bool = false,
               alsoListed: [(backend: dp_lb_endpoint, vip: dp_lb_endpoint)] = []) throws(BPFError) {
        let path = root.shared(DP_MAP_LB_REPLY)
        // The maps appear with the first program loaded; without them there is nothing to translate.
        guard access(path, F_OK) == 0 else { return }
        let map = try BPFMap.open(pinned: path)
        let ports = try BPFMap.open(pinned: root.shared(DP_MAP_LB_RPORTS))
        for e in entries { try map.update(e.backend, e.vip) }
        try ports.fill(LoadBalancerCompiler.portWords(Set((entries + alsoListed).map(\.backend.port))))
        guard removingOthers else { return }
        let keep = Set(entries.map { Endpoint($0.backend) })
        for key in try map.keys(as: dp_lb_endpoint.self) where !keep.contains(Endpoint(key)) { try map.delete(key) }
    }

    /// An endpoint as a hashable value.
    struct Endpoint: Hashable {
        var bytes: [UInt8]
        init(_ e: dp_lb_endpoint) { bytes = withUnsafeBytes(of: e, Array.init) }
    }
}

/// What an apply did.
public struct ApplyResult: Sendable {
    public var generation: UInt64
    public var changed: Bool
    public var changes: [String]
    /// The change was made by patching the running firewall table (see Dataplane.patch).
    public var patched = false
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
        /// Load-balancer counter slots by name and backend slots by identity, the ones new
        /// in this apply, the backend slots it frees, and the compiled tables (nil: none).
        var vipSlots: [String: UInt32] = [:]
        var freshVipSlots: [UInt32] = []
        var backendSlots: [String: UInt32] = [:]
        var freshBackendSlots: [UInt32] = []
        var removedBackendSlots: [UInt32] = []
        var balancers: LoadBalancerTables?
        /// The VIP ports of the running generation and of this one (the port filter).
        var oldVipPorts: Set<UInt16> = []
        var vipPorts: Set<UInt16> = []
        /// The generation this apply makes: the epoch of the backend slots it fills.
        var epoch: UInt32 = 0
        /// The pinned link is attached to this ifindex in a mode the config accepts.
        var keepsLink: Bool
        // Filled by prepare():
        /// Nodes per firewall table of the program that will run.
        var capacity = 0
        /// A program instance to load: the interface is new, or its table must grow.
        var program: BPFObject?
        /// The interface's program, loaded ahead while the rule sets compiled (a new interface).
        var preload: Preload?
        /// The running table pin, moved aside while a bigger program replaces it.
        var setAside: [String] = []
        /// The running program, to swap back if the apply fails after replacing it.
        var previousProgram: FileDescriptor?
        var ruleStats: BPFMap?
        /// The interface's generation root and table maps, and the new generation's tables.
        var maps: GenerationMaps?
        var tables: [GenerationTable: BPFMap] = [:]
        /// The slot the new generation fills (the one the running generation does not
        /// use), the running generation's, and its root record to flip back to.
        var slot: UInt32 = 0
        var runningSlot: UInt32?
        var previousRecord: BPFMap?
        /// The running firewall table: the spare once the new generation runs.
        var previousFirewall: BPFMap?
        var mode = XDPAttachMode.native
    }

    /// Makes the kernel match `text`. Atomic per interface: a packet sees the old rule set or
    /// the new one. A failure at any step leaves the running state as it was. With
    /// `patching`, a change inside one firewall's rule list patches the running table;
    /// without, tables that patches left with patch trees are compiled afresh even when
    /// the file is the same.
    public func apply(_ text: String, patching: Bool = true) throws(DataplaneError) -> ApplyResult {
        // The file that is running, over intact attachments: nothing to validate, compile
        // or change. (Only reads; an apply racing this one wins either way.)
        let runningID = root.stateID()
        let running = runningID == nil ? nil : try state()
        let recompile = { (s: DataplaneState) in patching ? [] : s.interfaces.filter { $0.firewallPatchTrees > 0 }.map(\.name) }
        if let running, isUnchanged(running, text), recompile(running).isEmpty {
            return ApplyResult(generation: running.generation, changed: false, changes: [])
        }
        // A change inside one firewall's rule list patches the running table.
        var lock: FileDescriptor?
        defer { withExtendedLifetime(lock) {} }
        if patching, let running, let edit = RuleEdit(from: running.configText, to: text) {
            lock = try lockRoot()
            // Unless another apply got in first, the state is the one just read.
            let old = root.stateID() == runningID ? running : try state()
            if let old, old.generation == running.generation, let result = try patch(old, to: text, edit) {
                return result
            }
        }
        // The running config is decoded on the other core while this one validates the
        // new file (each takes ~0.4 s at 100,000 rules).
        let runningConfig = running.map { s in Concurrently { () -> Result<Config, ConfigErrors> in
            Result { () throws(ConfigErrors) in try ConfigDecoder.decode(s.configText) } } }
        let config = try Self.validate(text)
        let refused = Self.unsupported(config)
        if !refused.isEmpty { throw .refused(refused) }
        do { try root.create() } catch { throw .kernel(error) }
        if lock == nil { lock = try lockRoot() }

        let old = try state()
        let patched = old.map(recompile) ?? []
        if let old, isUnchanged(old, text), patched.isEmpty {
            return ApplyResult(generation: old.generation, changed: false, changes: [])
        }
        let oldConfig = try old.map { s throws(DataplaneError) in
            // Decoded early, unless another apply got in first.
            if let running, let decoded = runningConfig?.value, running.generation == s.generation, running.configText == s.configText {
                do { return try decoded.get() } catch { throw .state("the applied config no longer decodes: \(error)") }
            }
            return try self.config(of: s)
        }
        // New interfaces' programs load on the other core while the rule sets compile.
        let preloads = preload(config, old: old)
        var plans: [InterfacePlan]
        do { plans = try plan(config, old: old, oldConfig: oldConfig) } catch {
            discard(preloads)
            throw error
        }
        for i in plans.indices { plans[i].preload = preloads[plans[i].config.name] }
        let changes = ConfigDiff.changes(from: oldConfig, to: config)
            + plans.filter { $0.previous != nil && !$0.keepsLink }.map { "~ reattach \($0.config.name)" }
            + patched.map { "~ \($0): firewall compiled afresh (patched rules merged into its trees)" }
        if let old, old.netns == netns, changes.isEmpty {
            discard(preloads)
            return ApplyResult(generation: old.generation, changed: false, changes: [])
        }

        var created: [String] = []
        do {
            for i in plans.indices {
                if try prepare(&plans[i]) { created.append(plans[i].config.name) }
            }
        } catch {
            plans.forEach(restore)
            // Programs loaded ahead that no prepare took, and pin directories new in this apply, go.
            discard(Dictionary(uniqueKeysWithValues: plans.compactMap { p in p.preload.map { (p.config.name, $0) } }))
            for p in plans where p.previous == nil || created.contains(p.config.name) { try? root.removeTree(root.interface(p.config.name)) }
            throw error
        }
        let generation = (old?.generation ?? 0) + 1
        let replies = Replies(root: root, new: LoadBalancerCompiler.replies(config), old: oldConfig.map(LoadBalancerCompiler.replies) ?? [])
        try commit(&plans, generation: generation, old: old, created: created, replies: replies) { plans throws(BPFError) in
            let interfaces = plans.map { p in
                InterfaceState(name: p.config.name, ifindex: p.ifindex, mode: p.mode.rawValue, slots: RuleSlots(p.slots),
                               firewallNodes: p.table?.nodes.count ?? 0, firewallTrees: p.table?.trees ?? 0,
                               firewallCapacity: p.capacity, limitSlots: p.limitSlots,
                               vipSlots: p.vipSlots, backendSlots: p.backendSlots)
            }
            try root.writeState(DataplaneState(generation: generation, netns: netns, configText: text, interfaces: interfaces).encoded)
        }
        return ApplyResult(generation: generation, changed: true, changes: changes)
    }

    /// Holds the pin root's lock until the descriptor closes.
    func lockRoot() throws(DataplaneError) -> FileDescriptor {
        do { return try root.lock() } catch { throw .kernel(error) }
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
            let (slots, fresh) = InterfaceState.assignSlots(iface.firewall?.rules.map(\.name) ?? [], previous: previous?.slots.byName ?? [:])
            let (limitSlots, freshLimits) = InterfaceState.assignSlots(iface.rateLimits.map(\.name), previous: previous?.limitSlots ?? [:])
            let (vipSlots, freshVips) = InterfaceState.assignSlots(iface.loadBalancers.map(\.name), previous: previous?.vipSlots ?? [:])
            let backendIDs = LoadBalancerCompiler.backendIDs(iface.loadBalancers)
            let (backendSlots, freshBackends) = InterfaceState.assignSlots(backendIDs, previous: previous?.backendSlots ?? [:])
            let compiled = Self.compile(iface, at: i, slots: Slots(rules: slots, limits: limitSlots, vips: vipSlots, backends: backendSlots),
                                        compiler: compiler)
            errors += compiled.errors
            let (table, limits) = (compiled.table, compiled.limits)
            var keepsLink = false
            if let previous, old?.netns == netns, previous.ifindex == ifindex, linkIntact(previous) {
                keepsLink = iface.xdpMode == .auto || iface.xdpMode.rawValue == previous.mode
            }
            let oldDefault = oldConfig?.interfaces.first { $0.name == iface.name }?.firewall?.defaultAction
            var plan = InterfacePlan(config: iface, ifindex: ifindex, previous: previous, slots: slots,
                                     freshSlots: fresh, resetDefault: oldDefault != iface.firewall?.defaultAction,
                                     table: table, limitSlots: limitSlots, freshLimitSlots: freshLimits, limits: limits,
                                     keepsLink: keepsLink)
            plan.vipSlots = vipSlots
            plan.freshVipSlots = freshVips
            plan.backendSlots = backendSlots
            plan.freshBackendSlots = freshBackends
            let kept = Set(backendIDs)
            plan.removedBackendSlots = (previous?.backendSlots ?? [:]).filter { !kept.contains($0.key) }.map(\.value)
            plan.balancers = compiled.balancers
            plan.oldVipPorts = LoadBalancerCompiler.vipPorts(oldConfig?.interfaces.first { $0.name == iface.name }?.loadBalancers ?? [])
            plan.vipPorts = LoadBalancerCompiler.vipPorts(iface.loadBalancers)
            plan.epoch = UInt32(truncatingIfNeeded: (old?.generation ?? 0) + 1)
            plans.append(plan)
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
        let created = access(dir, F_OK) != 0 || plan.preload != nil
        let nodes = plan.table?.nodes.count ?? 0
        do throws(BPFError) {
            if access(dir, F_OK) != 0 && mkdir(dir, 0o700) != 0 { throw BPFError(.pin(dir), errno: errno) }
            plan.capacity = plan.previous?.firewallCapacity ?? 0
            // The running generation, read from the running program's root. A program from
            // a build whose tables had another shape takes none of this one's; one from
            // before generation roots (ABI 2) has none.
            let pinned = plan.preload == nil && access(root.map(DP_MAP_GEN, of: name), F_OK) == 0 ? try GenerationMaps(pinDirectory: dir) : nil
            let running = try pinned?.running()
            plan.runningSlot = running?.slot
            plan.slot = running.map { 1 - $0.slot } ?? 0
            plan.previousFirewall = try running.flatMap { r throws(BPFError) in try pinned!.table(.firewall, slot: r.slot) }
            var sameShape = pinned != nil
            if let running = plan.previousFirewall { sameShape = Self.firewallCapacity(of: running) == plan.capacity }
            let load = !plan.keepsLink || nodes > plan.capacity || !sameShape
            if load { plan.capacity = max(plan.capacity, FirewallTable.capacity(for: nodes)) }
            // A program loaded ahead serves if its tables are as big; else its pins go.
            let preloaded = plan.preload?.program(forCapacity: plan.capacity)
            if let preload = plan.preload {
                if preloaded != nil {
                    plan.capacity = preload.capacity
                } else {
                    try root.removeTree(dir)
                    if mkdir(dir, 0o700) != 0 { throw BPFError(.pin(dir), errno: errno) }
                }
                plan.preload = nil
            }
            let spare = load || plan.table == nil ? nil : takeSpare(name, capacity: plan.capacity)
            let table = try Self.firewallTable(capacity: plan.capacity, plan.table, filling: spare)
            if plan.table != nil { plan.tables[.firewall] = table }
            if load {
                // A program instance sized for this table, with a root of its own (counters
                // and the other table maps are reused from their pins). The running
                // program's root and table pins step aside until commit: it runs on them,
                // untouched, until the link switches programs.
                for pin in [DP_MAP_GEN, DP_MAP_FW].map({ root.map($0, of: name) }) where preloaded == nil && access(pin, F_OK) == 0 {
                    if rename(pin, pin + "_old") != 0 { throw BPFError(.pin(pin), errno: errno) }
                    plan.setAside.append(pin)
                }
                if let preloaded {
                    plan.program = preloaded
                } else {
                    plan.program = try Self.ingressProgram(pinRoot: dir, table: table,
                                                           pinPaths: [DP_MAP_LB_REPLY: root.shared(DP_MAP_LB_REPLY),
                                                                      DP_MAP_LB_RPORTS: root.shared(DP_MAP_LB_RPORTS)])
                }
                if plan.keepsLink {
                    plan.previousProgram = try XDPLink.program(pinPath: root.link(name))
                }
            }
            // The new generation goes to a new program's maps, else the running one's.
            let maps = if let program = plan.program { try GenerationMaps(program) } else { try GenerationMaps(pinDirectory: dir) }
            plan.maps = maps
            plan.previousRecord = try maps.record()
            plan.ruleStats = try BPFMap.open(pinned: root.map(DP_MAP_RULE_STATS, of: name))
            if let limits = plan.limits { plan.tables[.rateLimits] = try Self.limitTable(limits) }
            if let balancers = plan.balancers { plan.tables.merge(try Self.balancerTables(balancers)) { $1 } }
        } catch {
            restore(plan)
            plan.setAside = []
            throw .kernel(error)
        }
        return created
    }

    /// A firewall table of `capacity` nodes holding `table` (empty when there is none),
    /// written through its memory: `spare` (a table of that capacity no packet reads) or a new one.
    public static func firewallTable(capacity: Int, _ table: FirewallTable?, filling spare: BPFMap? = nil) throws(BPFError) -> BPFMap {
        let map: BPFMap
        if let spare {
            map = spare
        } else {
            // One value holding every node (xdpctl_abi.h): the program offsets into it.
            map = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_fw_tree", keySize: 4,
                                    valueSize: capacity * MemoryLayout<dp_fw_node>.stride, maxEntries: 1, flags: UInt32(BPF_F_MMAPABLE))
        }
        if let table {
            try map.withMappedValues(table.nodes.count, as: dp_fw_node.self, writable: true) { memory in
                _ = table.nodes.withUnsafeBufferPointer { memory.initialize(fromContentsOf: $0) }
            }
        }
        return map
    }

    /// The capacity (nodes) of firewall table `map`, or nil when it has another shape: a
    /// table from a build whose programs looked nodes up one by one, or was not mappable.
    static func firewallCapacity(of map: BPFMap) -> Int? {
        guard let info = try? map.info(), info.maxEntries == 1, info.flags & UInt32(BPF_F_MMAPABLE) != 0,
              info.valueSize % MemoryLayout<dp_fw_node>.stride == 0 else { return nil }
        return info.valueSize / MemoryLayout<dp_fw_node>.stride
    }

    /// Loads xdp_ingress (maps pinned under `pinRoot`, or at `pinPaths`) for firewall
    /// tables of `table`'s capacity: the verifier bounds every node offset by it.
    public static func ingressProgram(pinRoot: String, table: BPFMap, pinPaths: [String: String] = [:]) throws(BPFError) -> BPFObject {
        guard let capacity = firewallCapacity(of: table) else { throw BPFError(.createMap("dp_fw_tree"), errno: EINVAL) }
        return try BPFObject(.xdpIngress, pinRoot: pinRoot, innerMaps: [DP_MAP_FW: table], pinPaths: pinPaths,
                             constants: [DP_FW_RODATA: withUnsafeBytes(of: UInt32(capacity)) { Array($0) }])
    }

    /// Counter and table slots by name, as an apply assigns them.
    struct Slots {
        var rules: [String: UInt32]
        var limits: [String: UInt32]
        var vips: [String: UInt32]
        var backends: [String: UInt32]

        /// Fresh slots for everything `iface` names, as a first apply would give.
        init(fresh iface: InterfaceConfig) {
            func slots(_ names: [String]) -> [String: UInt32] { InterfaceState.assignSlots(names, previous: [:]).slots }
            self.init(rules: slots(iface.firewall?.rules.map(\.name) ?? []), limits: slots(iface.rateLimits.map(\.name)),
                      vips: slots(iface.loadBalancers.map(\.name)), backends: slots(LoadBalancerCompiler.backendIDs(iface.loadBalancers)))
        }

        init(rules: [String: UInt32], limits: [String: UInt32], vips: [String: UInt32], backends: [String: UInt32]) {
            self.rules = rules
            self.limits = limits
            self.vips = vips
            self.backends = backends
        }
    }

    /// The interface's firewall table, rate-limit entries and load-balancer tables as
    /// apply installs them (nil: none), and what stops them from fitting.
    static func compile(_ iface: InterfaceConfig, at i: Int, slots: Slots, compiler: FirewallCompiler)
        -> (table: FirewallTable?, limits: [dp_rl_entry]?, balancers: LoadBalancerTables?, errors: [ConfigError]) {
        var table: FirewallTable?, limits: [dp_rl_entry]?, balancers: LoadBalancerTables?, errors: [ConfigError] = []
        if let fw = iface.firewall {
            do {
                table = try compiler.compile(fw, slots: slots.rules)
            } catch {
                errors.append(ConfigError(path: "interfaces[\(i)].firewall", message: error.message))
            }
        }
        if let top = slots.limits.values.max(), top >= DP_RL_MAX_LIMITS {
            errors.append(ConfigError(path: "interfaces[\(i)].rate_limits", message: "rate limits need slot \(top); at most \(DP_RL_MAX_LIMITS) fit (apply with fewer limits first)"))
        } else if !iface.rateLimits.isEmpty {
            do { limits = try RateLimitCompiler.compile(iface.rateLimits, slots: slots.limits) } catch {
                errors.append(ConfigError(path: "interfaces[\(i)].rate_limits", message: error.message))
            }
        }
        if !iface.loadBalancers.isEmpty {
            do { balancers = try LoadBalancerCompiler.compile(iface.loadBalancers, vipSlots: slots.vips, backendSlots: slots.backends) } catch {
                errors.append(ConfigError(path: "interfaces[\(i)].load_balancers", message: error.message))
            }
        }
        return (table, limits, balancers, errors)
    }

    /// A dp_rl table holding `entries`.
    public static func limitTable(_ entries: [dp_rl_entry]) throws(BPFError) -> BPFMap {
        let map = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_rl_table", keySize: 4,
                                    valueSize: MemoryLayout<dp_rl_entry>.size, maxEntries: RateLimitCompiler.capacity + 1)
        try map.fill(entries)
        return map
    }

    /// Puts set-aside pins back (the apply did not go through).
    func restore(_ plan: InterfacePlan) {
        for pin in plan.setAside {
            unlink(pin)
            rename(pin + "_old", pin)
        }
    }

    /// Flips every interface to its new generation, attaches new interfaces, records the
    /// state and detaches the interfaces the file no longer names. On failure before the
    /// state is recorded, flips back and detaches what it attached.
    func commit(_ plans: inout [InterfacePlan], generation: UInt64, old: DataplaneState?, created: [String], replies: Replies,
                record: ([InterfacePlan]) throws(BPFError) -> Void) throws(DataplaneError) {
        var flipped: [Int] = []
        var attached: [Int] = []
        var replaced: [Int] = []
        do throws(BPFError) {
            try replies.write(replies.new, alsoListed: replies.old)
            for i in plans.indices {
                let p = plans[i]
                // An interface new in this apply has new counter maps, zero already.
                for slot in created.contains(p.config.name) ? [] : p.freshSlots + (p.resetDefault ? [0] : []) {
                    try p.ruleStats!.updatePerCPU(slot, dp_rule_stats())
                }
                try resetLimitSlots(p)
                try fillBackendSlots(p)
                // Every table goes to the slot no packet reads; one update of the root switches them all.
                flipped.append(i)
                try p.maps!.stage(p.tables, slot: p.slot)
                try p.maps!.flip(id: generation, slot: p.slot, tables: p.tables.keys)
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
                try? plans[i].maps!.restore(plans[i].previousRecord)
                try? plans[i].maps!.clear(slot: plans[i].slot)
                try? writeVipPorts(plans[i], plans[i].oldVipPorts)
            }
            for i in attached { try? XDPLink.detach(pinPath: root.link(plans[i].config.name), interface: plans[i].config.name) }
            for i in replaced {
                if let old = plans[i].previousProgram {
                    try? XDPLink.replaceProgram(pinPath: root.link(plans[i].config.name), programFD: old.raw, interface: plans[i].config.name)
                }
            }
            try? replies.write(replies.old, removingOthers: true)
            plans.forEach(restore)
            for name in created { try? root.removeTree(root.interface(name)) }
            throw .kernel(error)
        }
        do {
            for p in plans {
                for pin in p.setAside { unlink(pin + "_old") }
                // ABI 2's firewall map, left by a program this apply replaced.
                unlink(root.map("dp_fw", of: p.config.name))
                // The old slot is emptied, and its firewall table kept as the spare, once
                // the flip has returned; a replaced program may still be finishing a packet
                // on it, so its old slot waits for the next apply to refill it.
                guard p.program == nil else { keepSpare(nil, of: p.config.name, capacity: p.tables[.firewall] == nil ? 0 : p.capacity); continue }
                if let old = p.runningSlot { try p.maps!.clear(slot: old) }
                keepSpare(p.previousFirewall, of: p.config.name, capacity: p.tables[.firewall] == nil ? 0 : p.capacity)
            }
            for p in plans where p.oldVipPorts != p.vipPorts { try writeVipPorts(p, p.vipPorts) }
            for p in plans { try retireBackends(p) }
            try replies.write(replies.new, removingOthers: true)
        } catch { throw .kernel(error) }
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

    /// Backends new in this apply get their slot filled (epoch: this generation) and their
    /// counters zeroed before any table names them; so do new VIPs' counters.
    func fillBackendSlots(_ p: InterfacePlan) throws(BPFError) {
        try writeVipPorts(p, p.oldVipPorts.union(p.vipPorts))
        guard let tables = p.balancers else { return }
        let name = p.config.name
        let backends = try BPFMap.open(pinned: root.map(DP_MAP_LB_BACKENDS, of: name))
        let backendStats = try BPFMap.open(pinned: root.map(DP_MAP_LB_BSTATS, of: name))
        for slot in p.freshBackendSlots {
            var entry = tables.backends[slot]!
            entry.epoch = p.epoch
            try backendStats.updatePerCPU(slot, dp_lb_stats())
            try backends.update(slot, entry)
        }
        let vipStats = try BPFMap.open(pinned: root.map(DP_MAP_LB_VSTATS, of: name))
        for slot in p.freshVipSlots { try vipStats.updatePerCPU(slot, dp_lb_stats()) }
    }

    /// Sets the interface's VIP port filter to `ports` (nothing to do when it stays empty).
    func writeVipPorts(_ p: InterfacePlan, _ ports: Set<UInt16>) throws(BPFError) {
        guard !(p.oldVipPorts.isEmpty && p.vipPorts.isEmpty) else { return }
        try BPFMap.open(pinned: root.map(DP_MAP_LB_VPORTS, of: p.config.name)).fill(LoadBalancerCompiler.portWords(ports))
    }

    /// Removed backends' slots get epoch 0: their connections are balanced afresh.
    func retireBackends(_ p: InterfacePlan) throws(BPFError) {
        guard !p.removedBackendSlots.isEmpty else { return }
        let backends = try BPFMap.open(pinned: root.map(DP_MAP_LB_BACKENDS, of: p.config.name))
        for slot in p.removedBackendSlots {
            guard var entry: dp_lb_backend = try backends.lookup(slot) else { continue }
            entry.epoch = 0
            try backends.update(slot, entry)
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
