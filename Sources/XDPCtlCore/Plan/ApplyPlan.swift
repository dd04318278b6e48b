import CXDPCtlABI

/// What the kernel says about an interface the last apply attached, read before an apply
/// plans: the one input of the plan that is not a file.
public struct InterfaceFacts: Sendable, Equatable {
    /// xdpctl's pinned link still runs a program on the ifindex the state records.
    public var linkIntact: Bool
    /// The slot of the table maps the running generation uses, from the interface's root
    /// (for a program of a build from before roots, from its firewall header); nil: none.
    public var runningSlot: UInt32?
    /// The running program has a root of this build's shape.
    public var hasRoot: Bool
    /// Nodes of the running firewall table (nil: none; 0: a table of another shape,
    /// which no program of this build takes).
    public var firewallCapacity: Int?

    public init(linkIntact: Bool, runningSlot: UInt32?, hasRoot: Bool, firewallCapacity: Int?) {
        self.linkIntact = linkIntact
        self.runningSlot = runningSlot
        self.hasRoot = hasRoot
        self.firewallCapacity = firewallCapacity
    }
}

/// Counter and table slots by name, as an apply assigns them: a name keeps its slot, a
/// new one takes the lowest free slot (InterfaceState.assignSlots).
public struct Slots: Sendable, Equatable {
    public var rules: [String: UInt32]
    public var limits: [String: UInt32]
    public var vips: [String: UInt32]
    /// By LoadBalancerCompiler.backendID.
    public var backends: [String: UInt32]
    /// NAT rules, DNAT and SNAT.
    public var nat: [String: UInt32]
    /// Backend slots whose health checks failed: they get no Maglev entries.
    public var down: Set<UInt32> = []

    public init(rules: [String: UInt32], limits: [String: UInt32], vips: [String: UInt32], backends: [String: UInt32],
                nat: [String: UInt32] = [:]) {
        self.rules = rules
        self.limits = limits
        self.vips = vips
        self.backends = backends
        self.nat = nat
    }

    /// Fresh slots for everything `iface` names, as a first apply gives them.
    public init(fresh iface: InterfaceConfig) {
        func slots(_ names: [String]) -> [String: UInt32] { InterfaceState.assignSlots(names, previous: [:]).slots }
        self.init(rules: slots(iface.firewall?.rules.map(\.name) ?? []), limits: slots(iface.rateLimits.map(\.name)),
                  vips: slots(iface.loadBalancers.map(\.name)), backends: slots(LoadBalancerCompiler.backendIDs(iface.loadBalancers)),
                  nat: slots(NATCompiler.ruleNames(iface.nat)))
    }
}

/// One interface's part of an apply, decided before anything in the kernel changes.
public struct InterfacePlan {
    public var config: InterfaceConfig
    public var ifindex: Int32
    /// What the last apply recorded for the interface (nil: new in this apply).
    public var previous: InterfaceState?

    // The program.
    /// The pinned link stays: it runs on this ifindex in a mode the config accepts.
    public var keepsLink: Bool
    /// Load a program instance (the interface is new or reattached, its table must grow,
    /// or the running program is of another shape); else the running one serves.
    public var loadsProgram: Bool
    /// Nodes every firewall table of the program that will run holds: the running
    /// program's, or at least this much in one loaded now.
    public var capacity: Int

    // The generation.
    /// The slot the new generation's tables go to: the one the running generation does
    /// not use, or 0 on an interface that has none.
    public var slot: UInt32
    public var runningSlot: UInt32?
    public var firewall: FirewallTable?
    public var limits: [dp_rl_entry]?
    public var balancers: LoadBalancerTables?
    public var nat: NATTables?

    // The state the new generation reads.
    public var slots: Slots
    /// Slots new in this apply, whose counters (and buckets) start at zero.
    public var freshRuleSlots: [UInt32]
    public var freshLimitSlots: [UInt32]
    public var freshVipSlots: [UInt32]
    public var freshBackendSlots: [UInt32]
    public var freshNatSlots: [UInt32]
    /// NAT rule slots the new generation no longer uses: their connections end.
    public var removedNatSlots: [UInt32]
    /// The default action's counter starts again (the action changed, or the firewall is new).
    public var resetDefault: Bool
    /// Backend slots the new generation no longer uses: their connections are balanced afresh.
    public var removedBackendSlots: [UInt32]
    /// The VIP filter's bits of the running generation and of the new one.
    public var oldVipBits: Set<UInt16>
    public var vipBits: Set<UInt16>
    /// The epoch of the backend slots this apply fills: its generation.
    public var epoch: UInt32
    /// The file has NAT rules and this interface's nat_fast_path allows: its XDP program
    /// takes the fast path for their connections (DP_GEN_NAT_PEERS).
    public var natPeers = false

    /// What the state records once the plan ran: attached in `mode`, with tables of
    /// `capacity` nodes.
    public func state(mode: String, capacity: Int) -> InterfaceState {
        InterfaceState(name: config.name, ifindex: ifindex, mode: mode,
                       slots: RuleSlots(config.firewall?.rules.map(\.name) ?? [], slots: slots.rules),
                       firewallNodes: firewall?.nodes.count ?? 0, firewallTrees: firewall?.trees ?? 0,
                       firewallCapacity: capacity, limitSlots: slots.limits, vipSlots: slots.vips, backendSlots: slots.backends,
                       natSlots: slots.nat, summary: InterfaceSummary(config))
    }
}

/// What an apply does, decided before anything in the kernel changes (ApplyPlanner).
public struct ApplyPlan {
    /// The generation the apply makes.
    public var generation: UInt64
    public var interfaces: [InterfacePlan]
    /// Interfaces the last apply attached that the file no longer names.
    public var detach: [String]
    /// The ports backends answer from (the reply port filter, shared by every interface):
    /// the new config's and the running one's.
    public var replyPorts: Set<UInt16>
    public var oldReplyPorts: Set<UInt16>
    /// What changes, as `diff` prints it; empty when the apply has nothing to do.
    public var changes: [String]
}
