import CXDPCtlABI

/// Decides what an apply does from the config, what the last apply recorded and what
/// the kernel says about the interfaces: which programs to load or keep, which slots
/// and tables each interface's new generation gets, what to attach and detach. Pure:
/// it compiles the tables and touches nothing (XDPCtlKit runs the plan).
public struct ApplyPlanner {
    /// The file to apply, and the namespace the apply works in.
    public var config: Config
    public var netns: String?
    /// What the last apply recorded, and its config (nil: nothing applied).
    public var old: DataplaneState?
    public var oldConfig: Config?
    /// Interface indexes in the apply's namespace, by name (a name missing: no such interface).
    public var ifindexes: [String: Int32]
    /// What the kernel says about the interfaces the last apply attached, by name.
    public var facts: [String: InterfaceFacts]
    /// Interfaces whose firewall is compiled afresh even when unchanged (apply
    /// --full-compile over tables that patches left with patch trees).
    public var recompile: [String] = []
    /// Every interface's program is loaded again, whatever runs (recovering an apply that
    /// was interrupted: the pins may no longer name what runs).
    public var reload = false
    public var compiler = FirewallCompiler()
    /// The addresses of the interfaces, by name: what SNAT without to_address uses.
    public var addresses: [String: [IPAddress]] = [:]
    /// The interfaces that are veths (nat_fast_path "auto" is off there).
    public var veths: Set<String> = []
    /// Backends the health tables hold down, by interface name (LoadBalancerCompiler.backendIDs).
    public var downBackends: [String: Set<String>] = [:]

    public init(config: Config, netns: String?, old: DataplaneState?, oldConfig: Config?,
                ifindexes: [String: Int32], facts: [String: InterfaceFacts]) {
        self.config = config
        self.netns = netns
        self.old = old
        self.oldConfig = oldConfig
        self.ifindexes = ifindexes
        self.facts = facts
    }

    /// The plan; errors name the place in the file of everything that stops it (an
    /// interface that does not exist, tables that do not fit).
    public func plan() throws(ConfigErrors) -> ApplyPlan {
        let generation = (old?.generation ?? 0) + 1
        var errors: [ConfigError] = []
        var interfaces: [InterfacePlan] = []
        let natSlots = Self.natSlots(config, old)
        let anyNAT = config.interfaces.contains { !NATCompiler.ruleNames($0.nat).isEmpty }
        for (i, iface) in config.interfaces.enumerated() {
            guard let ifindex = ifindexes[iface.name] else {
                let place = netns.map { "network namespace \($0)" } ?? "this network namespace"
                errors.append(ConfigError(path: "interfaces[\(i)].name", message: "no interface \"\(iface.name)\" in \(place)"))
                continue
            }
            do throws(ConfigErrors) {
                var p = try plan(iface, at: i, ifindex: ifindex, generation: generation, nat: natSlots[iface.name] ?? ([:], []))
                switch iface.natFastPath {
                case .on: p.natPeers = anyNAT
                case .off: p.natPeers = false
                case .auto: p.natPeers = anyNAT && !veths.contains(iface.name)
                }
                interfaces.append(p)
            } catch {
                errors += error.errors
            }
        }
        if !errors.isEmpty { throw ConfigErrors(errors: errors) }
        let named = Set(config.interfaces.map(\.name))
        let changes = ConfigDiff.changes(from: oldConfig, to: config)
            + interfaces.filter { $0.previous != nil && !$0.keepsLink }.map { "~ reattach \($0.config.name)" }
            + interfaces.filter { $0.keepsLink && facts[$0.config.name]?.hasRoot == false }.map { "~ \($0.config.name): program of an older build replaced" }
            + recompile.map { "~ \($0): firewall compiled afresh (patched rules merged into its trees)" }
            + (reload ? interfaces.map { "~ \($0.config.name): program loaded again (an interrupted apply recovered)" } : [])
            + interfaces.compactMap { p in
                guard let before = p.previous?.firewallCapacity, p.capacity < before else { return nil }
                return "~ \(p.config.name): firewall table \(before) -> \(p.capacity) nodes (the program is loaded again; the memory goes back)"
            }
        return ApplyPlan(generation: generation, interfaces: interfaces,
                         detach: (old?.interfaces ?? []).map(\.name).filter { !named.contains($0) },
                         replyPorts: LoadBalancerCompiler.replyPorts(config), oldReplyPorts: oldConfig.map(LoadBalancerCompiler.replyPorts) ?? [],
                         changes: changes)
    }

    /// NAT rule counter slots, numbered across all interfaces: their counters are one
    /// shared map, because an interface's XDP program counts the packets of another's
    /// connections it translates (the fast path). Slots a rule had are kept; the slots of
    /// rules gone are not given again in the same apply (their old program may still
    /// count into them until the flip).
    public static func natSlots(_ config: Config, _ old: DataplaneState?) -> [String: (slots: [String: UInt32], fresh: [UInt32])] {
        func key(_ iface: String, _ rule: String) -> String { iface + "\u{0}" + rule }
        var previous: [String: UInt32] = [:]
        for s in old?.interfaces ?? [] { for (rule, slot) in s.natSlots { previous[key(s.name, rule)] = slot } }
        let names = config.interfaces.flatMap { i in NATCompiler.ruleNames(i.nat).map { key(i.name, $0) } }
        let (all, fresh) = InterfaceState.assignSlots(names, previous: previous)
        let isFresh = Set(fresh)
        var out: [String: (slots: [String: UInt32], fresh: [UInt32])] = [:]
        for i in config.interfaces {
            let slots = Dictionary(NATCompiler.ruleNames(i.nat).map { ($0, all[key(i.name, $0)]!) }, uniquingKeysWith: { a, _ in a })
            out[i.name] = (slots, slots.values.filter(isFresh.contains).sorted())
        }
        return out
    }

    func plan(_ iface: InterfaceConfig, at i: Int, ifindex: Int32, generation: UInt64,
              nat natAssigned: (slots: [String: UInt32], fresh: [UInt32])) throws(ConfigErrors) -> InterfacePlan {
        let previous = old?.interface(iface.name)
        let oldIface = oldConfig?.interfaces.first { $0.name == iface.name }
        let (rules, freshRules) = InterfaceState.assignSlots(iface.firewall?.rules.map(\.name) ?? [], previous: previous?.slots.byName ?? [:])
        let (limits, freshLimits) = InterfaceState.assignSlots(iface.rateLimits.map(\.name), previous: previous?.limitSlots ?? [:])
        let (vips, freshVips) = InterfaceState.assignSlots(iface.loadBalancers.map(\.name), previous: previous?.vipSlots ?? [:])
        let backendIDs = LoadBalancerCompiler.backendIDs(iface.loadBalancers)
        let (backends, freshBackends) = InterfaceState.assignSlots(backendIDs, previous: previous?.backendSlots ?? [:])
        let (nat, freshNat) = natAssigned
        var slots = Slots(rules: rules, limits: limits, vips: vips, backends: backends, nat: nat)
        slots.down = Set((downBackends[iface.name] ?? []).compactMap { backends[$0] })
        let tables = InterfaceTables(iface, at: i, slots: slots, compiler: compiler, addresses: addresses[iface.name] ?? [])
        if !tables.errors.isEmpty { throw ConfigErrors(errors: tables.errors) }

        // The program: the running one serves while its link is intact on this ifindex
        // in an accepted mode, its tables have this build's shape and the new table fits.
        let fact = previous.flatMap { facts[$0.name] }
        var keepsLink = false
        if let previous, let fact, old?.netns == netns, previous.ifindex == ifindex, fact.linkIntact {
            keepsLink = iface.xdpMode == .auto || iface.xdpMode.rawValue == previous.mode
        }
        var capacity = previous?.firewallCapacity ?? 0
        let nodes = tables.firewall?.nodes.count ?? 0
        let sameShape = fact.map { $0.hasRoot && ($0.firewallCapacity == nil || $0.firewallCapacity == capacity) } ?? false
        // A table twice the size it needs (the rule set about halved since it grew) gives
        // its memory back: the program is loaded again at the size the new table needs.
        // Less than that stays, so that rule sets that come and go do not reload each time.
        let fits = FirewallTable.capacity(for: nodes)
        let oversized = FirewallTable.oversized(capacity: capacity, fits: fits)
        let loadsProgram = reload || !keepsLink || nodes > capacity || !sameShape || oversized
        if loadsProgram { capacity = oversized ? fits : max(capacity, fits) }
        let runningSlot = fact?.runningSlot.flatMap { $0 < DP_GEN_SLOTS ? $0 : nil }

        let kept = Set(backendIDs)
        return InterfacePlan(
            config: iface, ifindex: ifindex, previous: previous,
            keepsLink: keepsLink, loadsProgram: loadsProgram, capacity: capacity,
            slot: runningSlot.map { 1 - $0 } ?? 0, runningSlot: runningSlot,
            firewall: tables.firewall, limits: tables.limits, balancers: tables.balancers, nat: tables.nat,
            slots: slots, freshRuleSlots: freshRules, freshLimitSlots: freshLimits, freshVipSlots: freshVips,
            freshBackendSlots: freshBackends, freshNatSlots: freshNat,
            removedNatSlots: (previous?.natSlots ?? [:]).filter { nat[$0.key] == nil }.map(\.value).sorted(), resetDefault: oldIface?.firewall?.defaultAction != iface.firewall?.defaultAction,
            removedBackendSlots: (previous?.backendSlots ?? [:]).filter { !kept.contains($0.key) }.map(\.value).sorted(),
            oldVipBits: LoadBalancerCompiler.vipBits(oldIface?.loadBalancers ?? []),
            vipBits: LoadBalancerCompiler.vipBits(iface.loadBalancers),
            epoch: UInt32(truncatingIfNeeded: generation))
    }
}

/// An interface's tables as an apply installs them (nil: the interface has none of that
/// kind), compiled with `slots`, and what stops them from fitting, by place in the file.
public struct InterfaceTables {
    public var firewall: FirewallTable?
    public var limits: [dp_rl_entry]?
    public var balancers: LoadBalancerTables?
    public var nat: NATTables?
    public var errors: [ConfigError] = []

    /// `addresses`: the interface's own (nil: unknown, as for validate).
    public init(_ iface: InterfaceConfig, at i: Int, slots: Slots, compiler: FirewallCompiler, addresses: [IPAddress]? = nil) {
        if let fw = iface.firewall {
            if let problem = FirewallBudget.check(fw) {
                errors.append(ConfigError(path: "interfaces[\(i)].firewall.\(problem.path)", message: problem.message))
            } else {
                do { firewall = try compiler.compile(fw, slots: slots.rules) } catch {
                    errors.append(ConfigError(path: "interfaces[\(i)].firewall", message: error.message))
                }
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
            do { balancers = try LoadBalancerCompiler.compile(iface.loadBalancers, vipSlots: slots.vips, backendSlots: slots.backends, down: slots.down) } catch {
                errors.append(ConfigError(path: "interfaces[\(i)].load_balancers", message: error.message))
            }
        }
        if let rules = iface.nat, !(rules.dnat.isEmpty && rules.snat.isEmpty) {
            if let top = slots.nat.values.max(), top >= DP_NAT_MAX_RULES {
                errors.append(ConfigError(path: "interfaces[\(i)].nat", message: "NAT rules need counter slot \(top); at most \(DP_NAT_MAX_RULES - 1) rules fit, all interfaces together (fewer rules; or, when slots of removed rules are still held, apply with fewer first)"))
            } else {
                do { nat = try NATCompiler.compile(rules, slots: slots.nat, addresses: addresses) } catch {
                    errors.append(ConfigError(path: "interfaces[\(i)].nat", message: error.message))
                }
            }
        }
    }
}
