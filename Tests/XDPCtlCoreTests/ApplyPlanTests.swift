import CXDPCtlABI
import Testing
@testable import XDPCtlCore

/// The apply plan, decided without a kernel: from a config, the recorded state of the
/// last apply, and facts as the kernel would give them.
@Suite("Apply plans")
struct ApplyPlanTests {
    static let firewall = #"{"default_action": "allow", "rules": [{"name": "a", "action": "drop", "proto": "udp", "dst_ports": [9]}, {"name": "b", "action": "drop", "proto": "tcp", "dst_ports": [22]}]}"#
    static let balancer = #"{"name": "web", "vip": "10.0.0.10", "proto": "tcp", "port": 80, "backends": [{"address": "10.1.0.2", "port": 8080}, {"address": "10.1.0.3", "port": 8080}]}"#

    static func config(_ interfaces: String) throws -> Config {
        try ConfigDecoder.decode(#"{"version": 1, "interfaces": [\#(interfaces)]}"#)
    }

    /// Plans `config` over `old` (the state and config of an earlier plan), with every
    /// named interface present and the facts given (default: links intact, generation
    /// in slot 0, tables of the recorded capacity).
    static func plan(_ config: Config, over old: (state: DataplaneState, config: Config)? = nil,
                     facts: [String: InterfaceFacts]? = nil, ifindexes: [String: Int32] = ["eth0": 2, "eth1": 3]) throws -> ApplyPlan {
        let running = Dictionary(uniqueKeysWithValues: (old?.state.interfaces ?? []).map {
            ($0.name, InterfaceFacts(linkIntact: true, runningSlot: 0, hasRoot: true, firewallCapacity: $0.firewallNodes > 0 ? $0.firewallCapacity : nil))
        })
        return try ApplyPlanner(config: config, netns: nil, old: old?.state, oldConfig: old?.config,
                                ifindexes: ifindexes, facts: facts ?? running).plan()
    }

    /// The state an apply of `plan` records.
    static func state(_ plan: ApplyPlan, _ config: Config) -> (state: DataplaneState, config: Config) {
        (DataplaneState(generation: plan.generation, netns: nil, configText: "",
                        interfaces: plan.interfaces.map { $0.state(mode: "native", capacity: $0.capacity) }), config)
    }

    @Test("NAT's fast path: on every interface of a file with NAT rules, except veths under auto; off says off, on says on")
    func natFastPath() throws {
        let nat = #""nat": {"snat": [{"name": "masq", "src": ["10.0.0.0/8"], "to_address": "192.0.2.1"}]}"#
        func peers(_ interfaces: String, veths: Set<String> = []) throws -> [Bool] {
            var planner = ApplyPlanner(config: try Self.config(interfaces), netns: nil, old: nil, oldConfig: nil,
                                       ifindexes: ["eth0": 2, "eth1": 3], facts: [:])
            planner.veths = veths
            return try planner.plan().interfaces.map(\.natPeers)
        }
        #expect(try peers(#"{"name": "eth0", \#(nat)}, {"name": "eth1"}"#) == [true, true])
        #expect(try peers(#"{"name": "eth0", \#(nat)}, {"name": "eth1"}"#, veths: ["eth1"]) == [true, false])
        #expect(try peers(#"{"name": "eth0", \#(nat)}, {"name": "eth1", "nat_fast_path": "on"}"#, veths: ["eth1"]) == [true, true])
        #expect(try peers(#"{"name": "eth0", \#(nat)}, {"name": "eth1", "nat_fast_path": "off"}"#) == [true, false])
        #expect(try peers(#"{"name": "eth0"}, {"name": "eth1", "nat_fast_path": "on"}"#) == [false, false], "no NAT rules anywhere: nothing to take")
        #expect(errors(#"{"version": 1, "interfaces": [{"name": "eth0", "nat_fast_path": "yes"}]}"#).first?.hasPrefix("interfaces[0].nat_fast_path: \"yes\"") == true)
    }

    @Test("NAT rule counters are numbered across interfaces: 600 rules on each of two interfaces do not fit the 1,023 slots")
    func natSlotsAcrossInterfaces() throws {
        func rules(_ n: Int, _ base: Int) -> String {
            (0..<n).map { #"{"name": "d\#($0)", "proto": "tcp", "dst": "192.0.2.1", "dst_port": \#(base + $0), "to_address": "10.0.0.2", "to_port": 80}"# }.joined(separator: ", ")
        }
        let config = try Self.config(#"{"name": "eth0", "nat": {"dnat": [\#(rules(600, 1000))]}}, {"name": "eth1", "nat": {"dnat": [\#(rules(600, 2000))]}}"#)
        let slots = ApplyPlanner.natSlots(config, nil)
        #expect(Set(slots["eth0"]!.slots.values).isDisjoint(with: slots["eth1"]!.slots.values))
        let error = try #require(throws: ConfigErrors.self) { try Self.plan(config) }
        #expect(error.errors.map(\.path) == ["interfaces[1].nat"] && error.errors[0].message.contains("all interfaces together"), "\(error)")
    }

    @Test("a first apply loads and attaches a program per interface, generation 1 in slot 0")
    func firstApply() throws {
        let config = try Self.config(#"{"name": "eth0", "firewall": \#(Self.firewall)}, {"name": "eth1"}"#)
        let plan = try Self.plan(config)
        #expect(plan.generation == 1 && plan.detach.isEmpty)
        let eth0 = plan.interfaces[0], eth1 = plan.interfaces[1]
        #expect(!eth0.keepsLink && eth0.loadsProgram && eth0.slot == 0 && eth0.runningSlot == nil)
        #expect(eth0.capacity == FirewallTable.capacity(for: eth0.firewall!.nodes.count))
        #expect(eth0.slots.rules == ["a": 1, "b": 2] && eth0.freshRuleSlots == [1, 2] && eth0.resetDefault)
        #expect(eth1.firewall == nil && eth1.limits == nil && eth1.balancers == nil, "a name alone: no tables")
        #expect(plan.changes.contains("+ attach eth0 (xdp_mode auto)"), "\(plan.changes)")
    }

    @Test("an interface with only a load balancer gets no firewall table")
    func balancerOnly() throws {
        let plan = try Self.plan(try Self.config(#"{"name": "eth0", "load_balancers": [\#(Self.balancer)]}"#))
        let eth0 = plan.interfaces[0]
        #expect(eth0.firewall == nil && eth0.balancers != nil)
        #expect(eth0.slots.backends.count == 2 && eth0.freshBackendSlots == [1, 2])
        #expect(eth0.vipBits == [UInt16(dp_lb_vip_bit(IPAddress("10.0.0.10")!.words[0], 0, 0, 0, 80))], "the VIP's address and port")
        #expect(plan.replyPorts == [8080])
    }

    @Test("the next apply keeps the program and link, fills the other slot, and keeps slots by name")
    func nextApply() throws {
        let first = try Self.config(#"{"name": "eth0", "firewall": \#(Self.firewall)}"#)
        let old = Self.state(try Self.plan(first), first)
        let next = try Self.config(#"{"name": "eth0", "firewall": {"default_action": "allow", "rules": [{"name": "new", "action": "drop", "proto": "udp", "dst_ports": [7]}, {"name": "b", "action": "allow"}]}}"#)
        let plan = try Self.plan(next, over: old)
        let eth0 = plan.interfaces[0]
        #expect(plan.generation == 2)
        #expect(eth0.keepsLink && !eth0.loadsProgram && eth0.capacity == old.state.interfaces[0].firewallCapacity)
        #expect(eth0.runningSlot == 0 && eth0.slot == 1)
        #expect(eth0.slots.rules == ["new": 3, "b": 2], "b keeps its slot; a's slot 1 is not reused while old packets may count into it")
        #expect(eth0.freshRuleSlots == [3] && !eth0.resetDefault)
        #expect(try Self.plan(first, over: old).changes.isEmpty, "the same file changes nothing")
    }

    @Test("a rule set that outgrows the table loads a bigger program into the other slot")
    func growth() throws {
        let first = try Self.config(#"{"name": "eth0", "firewall": \#(Self.firewall)}"#)
        let old = Self.state(try Self.plan(first), first)
        let many = (0..<3000).map { #"{"name": "r\#($0)", "action": "drop", "proto": "udp", "dst_ports": [\#(10000 + $0)], "dst": ["10.9.\#($0 / 250).\#($0 % 250)"]}"# }
        let plan = try Self.plan(try Self.config(#"{"name": "eth0", "firewall": {"rules": [\#(many.joined(separator: ","))]}}"#), over: old)
        let eth0 = plan.interfaces[0]
        #expect(eth0.keepsLink && eth0.loadsProgram && eth0.slot == 1)
        #expect(eth0.capacity > old.state.interfaces[0].firewallCapacity && eth0.capacity >= eth0.firewall!.nodes.count)
    }

    @Test("a program without a generation root, or with a table of another shape, is replaced")
    func olderPrograms() throws {
        let first = try Self.config(#"{"name": "eth0", "firewall": \#(Self.firewall)}"#)
        let old = Self.state(try Self.plan(first), first)
        let capacity = old.state.interfaces[0].firewallCapacity
        // An ABI 2 program reads the shared rate-limit and balancer maps at the slot its
        // firewall header names: the new generation takes the other.
        for fact in [InterfaceFacts(linkIntact: true, runningSlot: 0, hasRoot: false, firewallCapacity: 0),
                     InterfaceFacts(linkIntact: true, runningSlot: 1, hasRoot: false, firewallCapacity: 0),
                     InterfaceFacts(linkIntact: true, runningSlot: 1, hasRoot: true, firewallCapacity: 0)] {
            let eth0 = try Self.plan(first, over: old, facts: ["eth0": fact]).interfaces[0]
            #expect(eth0.keepsLink && eth0.loadsProgram && eth0.capacity == capacity)
            #expect(eth0.runningSlot == fact.runningSlot && eth0.slot == 1 - fact.runningSlot!)
        }
    }

    @Test("a changed xdp_mode or a broken link reattaches; an interface the file drops is detached")
    func reattachAndDetach() throws {
        let first = try Self.config(#"{"name": "eth0", "xdp_mode": "native", "firewall": \#(Self.firewall)}, {"name": "eth1"}"#)
        let old = Self.state(try Self.plan(first), first)
        let generic = try Self.plan(try Self.config(#"{"name": "eth0", "xdp_mode": "generic", "firewall": \#(Self.firewall)}"#), over: old)
        #expect(!generic.interfaces[0].keepsLink && generic.interfaces[0].loadsProgram && generic.interfaces[0].slot == 1)
        #expect(generic.changes.contains("~ reattach eth0") && generic.detach == ["eth1"], "\(generic.changes)")
        var broken = Dictionary(uniqueKeysWithValues: old.state.interfaces.map {
            ($0.name, InterfaceFacts(linkIntact: true, runningSlot: 0, hasRoot: true, firewallCapacity: $0.firewallCapacity))
        })
        broken["eth0"]!.linkIntact = false
        let relinked = try Self.plan(first, over: old, facts: broken)
        #expect(!relinked.interfaces[0].keepsLink && relinked.changes == ["~ reattach eth0"], "\(relinked.changes)")
    }

    @Test("removed backends free their slots; new ones are fresh; a missing interface is named")
    func backendsAndErrors() throws {
        let first = try Self.config(#"{"name": "eth0", "load_balancers": [\#(Self.balancer)]}"#)
        let old = Self.state(try Self.plan(first), first)
        let next = try Self.config(#"{"name": "eth0", "load_balancers": [\#(Self.balancer.replacingOccurrences(of: "10.1.0.3", with: "10.1.0.4"))]}"#)
        let eth0 = try Self.plan(next, over: old).interfaces[0]
        #expect(eth0.removedBackendSlots == [2] && eth0.freshBackendSlots == [3] && eth0.freshVipSlots.isEmpty)
        #expect(eth0.oldVipBits == eth0.vipBits && eth0.vipBits.count == 1 && eth0.epoch == 2)

        let missing = #expect(throws: ConfigErrors.self) { try Self.plan(first, ifindexes: [:]) }
        #expect(missing?.errors.map(\.description) == [#"interfaces[0].name: no interface "eth0" in this network namespace"#])
    }
}
