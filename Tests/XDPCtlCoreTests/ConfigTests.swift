import Foundation
import Testing
import XDPCtlWorkloads
@testable import XDPCtlCore

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Decodes `text` expecting failure; returns the error lines.
func errors(_ text: String) -> [String] {
    do {
        _ = try ConfigDecoder.decode(text)
        Issue.record("expected the config to be rejected")
        return []
    } catch {
        return error.errors.map(\.description)
    }
}

/// A one-interface config whose firewall rules are `rules` (JSON text).
func withRules(_ rules: String) -> String {
    #"{"version": 1, "interfaces": [{"name": "eth0", "firewall": {"rules": [\#(rules)]}}]}"#
}

@Suite("Config decoding and validation")
struct ConfigTests {
    @Test("every example in configs/ is valid", arguments: try! FileManager.default
        .contentsOfDirectory(atPath: packageRoot.appendingPathComponent("configs").path).filter { $0.hasSuffix(".json") })
    func examples(_ file: String) throws {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("configs/\(file)"), encoding: .utf8)
        let config = try ConfigDecoder.decode(text)
        #expect(!config.interfaces.isEmpty)
    }

    @Test func specExampleDecodesEverySection() throws {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("configs/spec-example.json"), encoding: .utf8)
        let eth0 = try ConfigDecoder.decode(text).interfaces[0]
        #expect(eth0.firewall?.rules.map(\.name) == ["blocklist", "ssh-admins", "ssh-others", "udp-high"])
        #expect(eth0.firewall?.rules[3].dstPorts == [PortRange(1000, 2000)])
        #expect(eth0.firewall?.rules[0].src.map(\.description) == ["198.51.100.0/24", "2001:db8:bad::/48"])
        #expect(eth0.rateLimits.map(\.per) == [.source, .rule])
        #expect(eth0.rateLimits[0].tcpFlags == [.syn])
        #expect(eth0.loadBalancers[0].backends[1].state == .draining)
        #expect(eth0.loadBalancers[0].healthCheck?.fall == 3)
        #expect(eth0.nat?.snat[0].portRange == PortRange(20000, 59999))
        #expect(eth0.nat?.dnat[0].toPort == 80)
    }

    @Test("errors name the path, the value and the expected form", arguments: [
        (withRules(#"{"name": "a\u001b[2Jb", "action": "drop"}"#),
         #"interfaces[0].firewall.rules[0].name: "a\u001b[2Jb" is not valid; expected a name (1 to 64 bytes, printable characters: no line breaks, tabs or control characters)"#),
        (withRules(#"{"name": "a", "action": "drop", "\u001b[2J": 1}"#),
         #"interfaces[0].firewall.rules[0].\u001b[2J: unknown key "\u001b[2J"; expected one of: name, action, src, dst, proto, src_ports, dst_ports"#),
        (withRules(#"{"name": "a", "action": "drop", "src": [""# + String(repeating: "9", count: 1000) + #""]}"#),
         #"interfaces[0].firewall.rules[0].src[0]: ""# + String(repeating: "9", count: 77) + #"…" is not valid; expected an IPv4 or IPv6 address or prefix, e.g. 10.0.0.0/8 or 2001:db8::/32"#),
        (withRules(#"{"name": "a", "action": "drop", "src": ["10.0.0.0/8", "10.0.0.300/8"]}"#),
         #"interfaces[0].firewall.rules[0].src[1]: "10.0.0.300/8" is not valid; expected an IPv4 or IPv6 address or prefix, e.g. 10.0.0.0/8 or 2001:db8::/32"#),
        (withRules(#"{"name": "a", "action": "drop", "srcc": ["10.0.0.0/8"]}"#),
         #"interfaces[0].firewall.rules[0].srcc: unknown key "srcc"; expected one of: name, action, src, dst, proto, src_ports, dst_ports"#),
        (withRules(#"{"name": "a", "action": "drop", "src": ["10.0.0.1/8"]}"#),
         #"interfaces[0].firewall.rules[0].src[0]: "10.0.0.1/8" has bits set past the prefix length; expected 10.0.0.0/8"#),
        (withRules(#"{"name": "a", "action": "drop", "src": ["2001:db8::/129"]}"#),
         #"interfaces[0].firewall.rules[0].src[0]: "2001:db8::/129" is not valid; expected a prefix length of 0-32 for IPv4 or 0-128 for IPv6"#),
        (withRules(#"{"name": "a", "action": "drop", "proto": "tcp", "dst_ports": ["2000-1000"]}"#),
         #"interfaces[0].firewall.rules[0].dst_ports[0]: "2000-1000" runs backwards; expected low-high with low <= high"#),
        (withRules(#"{"name": "a", "action": "drop", "proto": "tcp", "dst_ports": [70000]}"#),
         #"interfaces[0].firewall.rules[0].dst_ports[0]: 70000 is not valid; expected a port number 0-65535 or a range "low-high" such as "1000-2000""#),
        (withRules(#"{"name": "a", "action": "drop", "dst_ports": [22]}"#),
         #"interfaces[0].firewall.rules[0].dst_ports: ports need "proto": "tcp" or "udp" in the same rule (found no proto)"#),
        (withRules(#"{"name": "a", "action": "reject"}"#),
         #"interfaces[0].firewall.rules[0].action: "reject" is not valid; expected one of "allow", "drop""#),
        (withRules(#"{"name": "a", "action": "drop", "proto": "sctpp"}"#),
         #"interfaces[0].firewall.rules[0].proto: "sctpp" is not valid; expected "tcp", "udp", "icmp", "icmpv6" or a protocol number 0-255"#),
        (withRules(#"{"name": "a", "action": "drop"}, {"name": "a", "action": "allow"}"#),
         #"interfaces[0].firewall.rules[1].name: duplicate rule name "a" (first used at interfaces[0].firewall.rules[0].name)"#),
        (withRules(#"{"action": "drop"}"#),
         #"interfaces[0].firewall.rules[0].name: missing; this key is required"#),
        (withRules(#"{"name": "a", "action": "drop", "src": ["10.0.0.0/8"], "dst": ["2001:db8::/32"]}"#),
         #"interfaces[0].firewall.rules[0].dst: src holds only IPv4 prefixes and dst only IPv6 ones; the rule could never match"#),
        (withRules(#"{"name": "a", "action": "drop", "src": []}"#),
         #"interfaces[0].firewall.rules[0].src: the list is empty; expected at least one of prefixes (leave the key out to match all)"#),
        (#"{"version": 1, "interfaces": [{"name": "eth0"}, {"name": "eth0"}]}"#,
         #"interfaces[1].name: duplicate interface name "eth0" (first used at interfaces[0].name)"#),
        (#"{"version": 1, "interfaces": [{"name": "eth0", "xdp_mode": "fast"}]}"#,
         #"interfaces[0].xdp_mode: "fast" is not valid; expected one of "native", "generic", "auto""#),
        (#"{"version": 1, "interfaces": [{"name": "a/b"}]}"#,
         #"interfaces[0].name: "a/b" is not valid; expected an interface name of 1 to 15 characters without '/' or spaces"#),
        (#"{"version": 2, "interfaces": []}"#,
         #"version: 2 is not valid; expected 1 (the only config version)"#),
        (#"{"version": 1, "interfaces": [], "interface": []}"#,
         #"interface: unknown key "interface"; expected one of: version, interfaces"#),
        (#"{"version": 1, "interfaces": [{"name": "e", "rate_limits": [{"name": "x", "per": "source"}]}]}"#,
         #"interfaces[0].rate_limits[0]: no rate; expected "packets_per_second" or "bytes_per_second""#),
        (#"{"version": 1, "interfaces": [{"name": "e", "rate_limits": [{"name": "x", "per": "rule", "packets_per_second": 5, "source_ipv4_prefix": 24}]}]}"#,
         #"interfaces[0].rate_limits[0].source_ipv4_prefix: a source prefix needs "per": "source""#),
        (#"{"version": 1, "interfaces": [{"name": "e", "rate_limits": [{"name": "x", "per": "source", "packets_per_second": 5, "source_ipv6_prefix": 129}]}]}"#,
         #"interfaces[0].rate_limits[0].source_ipv6_prefix: 129 is not valid; expected a prefix length from 1 to 128"#),
        (#"{"version": 1, "interfaces": [{"name": "e", "rate_limits": [{"name": "x", "per": "rule", "packets_per_second": 0}]}]}"#,
         #"interfaces[0].rate_limits[0].packets_per_second: 0 is not valid; expected a whole number from 1 to 2^40"#),
        (#"{"version": 1, "interfaces": [{"name": "e", "rate_limits": [{"name": "x", "per": "rule", "proto": "udp", "tcp_flags": ["syn"], "packets_per_second": 5}]}]}"#,
         #"interfaces[0].rate_limits[0].tcp_flags: tcp_flags need "proto": "tcp""#),
        (#"{"version": 1, "interfaces": [{"name": "e", "load_balancers": [{"name": "w", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [{"address": "2001:db8::1", "port": 80}]}]}]}"#,
         #"interfaces[0].load_balancers[0].backends[0].address: backend is IPv6 but the VIP 10.0.0.1 is not; expected the VIP's address family"#),
        (#"{"version": 1, "interfaces": [{"name": "e", "nat": {"snat": [{"name": "m", "src": ["10.0.0.0/8"], "to_address": "2001:db8::1"}]}}]}"#,
         #"interfaces[0].nat.snat[0].to_address: 2001:db8::1 is not in the address family of src prefix 10.0.0.0/8; expected an SNAT rule per family (or no to_address: the interface's own address of each family)"#),
        (#"{"version": 1, "interfaces": [{"name": "e", "nat": {"snat": [{"name": "m", "src": ["10.0.0.0/8"], "port_range": "0-100"}]}}]}"#,
         #"interfaces[0].nat.snat[0].port_range: 0-100 includes port 0; expected ports within 1-65535"#),
        (#"{"version": 1, "interfaces": [{"name": "e", "nat": {"snat": [{"name": "m", "src": ["10.0.0.0/8"], "port_range": "200-100"}]}}]}"#,
         #"interfaces[0].nat.snat[0].port_range: "200-100" runs backwards; expected low-high with low <= high"#),
        (#"{"version": 1, "interfaces": [{"name": "e", "nat": {"snat": [{"name": "m", "src": ["10.0.0.0/8"], "port_range": "1-70000"}]}}]}"#,
         #"interfaces[0].nat.snat[0].port_range: "1-70000" is not valid; expected a port number 0-65535 or a range "low-high" such as "1000-2000""#),
        (#"{"version": 1, "interfaces": [{"name": "e", "nat": {"dnat": [{"name": "a", "proto": "tcp", "dst": "10.0.0.1", "dst_port": 80, "to_address": "10.1.0.1", "to_port": 80}, {"name": "b", "proto": "tcp", "dst": "10.0.0.1", "dst_port": 80, "to_address": "10.1.0.2", "to_port": 80}]}}]}"#,
         #"interfaces[0].nat.dnat[1]: 10.0.0.1:80/tcp is already the public endpoint of DNAT rule "a"; expected each dst, dst_port and proto in one DNAT rule"#),
        (#"{"version": 1, "interfaces": [{"name": "e", "load_balancers": [{"name": "w", "vip": "10.9.0.1", "proto": "tcp", "port": 80, "backends": [{"address": "10.1.0.9", "port": 80}]}], "nat": {"dnat": [{"name": "a", "proto": "tcp", "dst": "10.0.0.1", "dst_port": 80, "to_address": "10.9.0.1", "to_port": 80}]}}]}"#,
         #"interfaces[0].nat.dnat[0].to_address: 10.9.0.1:80/tcp is the VIP of a load balancer; expected a DNAT target that is a server, not a VIP"#),
        ("{\"version\": 1,\n \"interfaces\": [}", "not valid JSON: line 2, column 17: expected a value"),
        (#"{"version": 1, "version": 1, "interfaces": []}"#,
         #"version: key "version" appears more than once"#),
    ])
    func rejected(text: String, message: String) {
        let lines = errors(text)
        #expect(lines.contains(message), "got: \(lines)")
    }

    @Test func everyErrorIsReportedNotJustTheFirst() {
        let lines = errors(withRules(#"{"name": "a", "action": "nope", "src": ["x"], "dst_ports": [1]}, {"name": "b", "action": "drop", "bogus": 1}"#))
        // action, src[0] and bogus; the cross-field check on dst_ports waits until the rule's fields parse.
        #expect(lines.count == 3, "got: \(lines)")
    }

    @Test func bareAddressesArePrefixesOfFullLength() throws {
        #expect(try IPPrefix("192.0.2.1").length == 32)
        #expect(try IPPrefix("2001:db8::1").length == 128)
        #expect(try IPPrefix("::/0").description == "::/0")
    }
}

@Suite("Config diff")
struct ConfigDiffTests {
    @Test func describesEveryKindOfChange() throws {
        let a = try ConfigDecoder.decode(#"{"version": 1, "interfaces": [{"name": "e0", "firewall": {"rules": [{"name": "x", "action": "drop"}, {"name": "y", "action": "drop"}, {"name": "z", "action": "drop"}]}}, {"name": "e1"}]}"#)
        let b = try ConfigDecoder.decode(#"{"version": 1, "interfaces": [{"name": "e0", "xdp_mode": "generic", "firewall": {"default_action": "drop", "rules": [{"name": "z", "action": "drop"}, {"name": "x", "action": "allow"}, {"name": "w", "action": "drop"}]}}, {"name": "e2"}]}"#)
        #expect(ConfigDiff.changes(from: a, to: b) == [
            "~ e0: xdp_mode auto -> generic",
            "~ e0: default_action allow -> drop",
            "~ e0: rule \"x\" changed",
            "+ e0: rule \"w\" at position 3",
            "- e0: rule \"y\"",
            "~ e0: rules reordered",
            "+ attach e2 (xdp_mode auto)",
            "- detach e1",
        ])
        #expect(ConfigDiff.changes(from: b, to: b).isEmpty)
    }
}

@Suite("State and reports")
struct StateTests {
    /// What the reports read instead of the config survives the state's round trip.
    @Test func summaryRoundTrips() throws {
        let config = try ConfigDecoder.decode(#"{"version": 1, "interfaces": [{"name": "eth0", "xdp_mode": "generic", "firewall": {"default_action": "drop", "rules": [{"name": "r", "action": "allow"}]}, "rate_limits": [{"name": "b", "per": "rule", "packets_per_second": 5}, {"name": "a", "per": "rule", "packets_per_second": 5}], "load_balancers": [{"name": "web", "vip": "2001:db8::10", "proto": "tcp", "port": 80, "backends": [{"address": "2001:db8::2", "port": 8080, "weight": 3, "state": "draining"}]}]}]}"#)
        let summary = InterfaceSummary(config.interfaces[0])
        #expect(summary.xdpMode == "generic" && summary.defaultAction == "drop" && summary.limits == ["b", "a"])
        #expect(summary.balancers.map(\.vip) == ["2001:db8::10"] && summary.balancers[0].backends.map(\.state) == ["draining"])
        let s = DataplaneState(generation: 1, netns: nil, configText: "{}", interfaces: [
            InterfaceState(name: "eth0", ifindex: 3, mode: "generic", slots: RuleSlots(["r"], slots: ["r": 1]), firewallNodes: 1, firewallTrees: 1,
                           firewallCapacity: 4096, summary: summary),
        ])
        let back = try DataplaneState(encoded: s.encoded, config: false)
        #expect(back.interfaces[0].summary == summary && back.configText == "" && back.interfaces[0].slots.ordered)
    }

    @Test func stateRoundTrips() throws {
        let s = DataplaneState(generation: 7, netns: "lab", configText: "{\"version\": 1,\n\"interfaces\": []}",
                               interfaces: [InterfaceState(name: "eth0", ifindex: 3, mode: "native", slots: RuleSlots(["a b": 1, "c\"": 2, "x\ty": 12]),
                                                           firewallNodes: 10, firewallTrees: 1, firewallCapacity: 4096),
                                            InterfaceState(name: "eth1", ifindex: 4, mode: "generic", slots: RuleSlots(),
                                                           firewallNodes: 0, firewallTrees: 0, firewallCapacity: 4096),
                                            InterfaceState(name: "eth2", ifindex: 5, mode: "native", slots: RuleSlots(["only": 1]),
                                                           firewallNodes: 10, firewallTrees: 1, firewallCapacity: 4096, firewallPatchTrees: 2)])
        let back = try DataplaneState(encoded: s.encoded)
        #expect(back == s)
        #expect(back.interfaces.map(\.slots.count) == [3, 0, 1])
        // A state written before slots had their own part keeps them in the header.
        let header = #"{"generation":7,"netns":null,"interfaces":[{"name":"eth0","ifindex":3,"mode":"native","slots":{"a":1,"b":2}}]}"#
        let old = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init) + Array(header.utf8) + Array("{}".utf8)
        #expect(try DataplaneState(encoded: old).interfaces[0].slots.byName == ["a": 1, "b": 2])
    }

    /// Slot lines spliced by an edit (as built, and as read back from a state) agree with
    /// assignSlots, and keep the rule list's order.
    @Test func slotEditsMatchAssignSlots() throws {
        let names = (0..<50).map { "r\($0)" }
        let (table, _) = InterfaceState.assignSlots(names, previous: [:])
        let stored = try DataplaneState(encoded: DataplaneState(generation: 1, netns: nil, configText: "", interfaces: [
            InterfaceState(name: "eth0", ifindex: 1, mode: "native", slots: RuleSlots(names, slots: table), firewallNodes: 0, firewallTrees: 0, firewallCapacity: 0),
        ]).encoded).interfaces[0].slots
        // Rules 10 and 11 became new1 and r10: r11 is gone, r10 keeps its slot, new1 is new.
        let edited = Array(names[..<10]) + ["new1", "r10"] + names[12...]
        let (expected, expectedFresh) = InterfaceState.assignSlots(edited, previous: table)
        for slots in [RuleSlots(names, slots: table), stored] {
            let (after, added, fresh) = try #require(slots.replacing(10..<12, with: ["new1", "r10"]))
            #expect(after.byName == expected && fresh == expectedFresh && added == ["new1": expected["new1"]!, "r10": 11])
            #expect(after.inOrder.map(\.name) == edited, "the lines follow the rule list")
            #expect(slots.replacing(10..<11, with: ["r12"]) == nil) // r12 is used outside the edit
            #expect(try #require(slots.replacing(0..<0, with: ["first"])).slots.inOrder.map(\.name) == ["first"] + names)
            #expect(try #require(slots.replacing(50..<50, with: ["last"])).slots.inOrder.map(\.name) == names + ["last"])
            #expect(slots.replacing(49..<51, with: ["x"]) == nil, "past the list")
        }
        #expect(RuleSlots(table).replacing(10..<12, with: ["x"]) == nil, "slots that keep no order are not spliced")
    }

    @Test func slotsSurviveAndFreedSlotsAreNotReusedAtOnce() {
        let (first, fresh1) = InterfaceState.assignSlots(["a", "b", "c"], previous: [:])
        #expect(first == ["a": 1, "b": 2, "c": 3] && fresh1 == [1, 2, 3])
        let (second, fresh2) = InterfaceState.assignSlots(["c", "d", "a"], previous: first)
        #expect(second == ["c": 3, "d": 4, "a": 1] && fresh2 == [4])
        let (third, _) = InterfaceState.assignSlots(["e"], previous: second)
        #expect(third == ["e": 2])
    }

    @Test func statsJSONHasTheSpecShape() throws {
        var s = InterfaceStats(name: "eth0", ifindex: 3)
        s.rxPackets = 5
        s.verdicts = [0, 2, 3, 0, 0]
        s.dropReasons = [0, 2, 0, 0, 0, 0]
        s.rules = [.init(name: "blocklist", packets: 2, bytes: 120)]
        s.defaultAction = .init(name: "allow", packets: 3, bytes: 180)
        let doc = try JSONParser.parse(StatsRenderer.json([s], generation: 1))
        guard case .object(let top) = doc, case .array(let ifs)? = top.first(where: { $0.key == "interfaces" })?.value,
              case .object(let eth0) = ifs[0] else { Issue.record("shape"); return }
        #expect(eth0.map(\.key) == ["name", "ifindex", "rx_packets", "rx_bytes", "verdicts", "drop_reasons", "rules",
                                    "firewall_default", "rate_limits", "load_balancers", "nat", "tc_egress"])
        #expect(eth0.first { $0.key == "verdicts" }?.value == .obj(["aborted": .int(0), "drop": .int(2), "pass": .int(3), "tx": .int(0), "redirect": .int(0)]))
        #expect(eth0.first { $0.key == "drop_reasons" }?.value == .obj(["firewall": .int(2), "rate_limit": .int(0), "malformed": .int(0), "no_backend": .int(0), "nat_no_port": .int(0)]))
    }
}

@Suite("Long rule lists")
struct LongRuleListTests {
    /// A long list is read in two halves at once: errors still come in file order, with
    /// their places, and names are unique across the halves.
    @Test func errorsInBothHalvesInOrder() throws {
        let fw = RuleProfile.acl(count: 25_000, seed: 4)
        let good = RuleProfile.config(fw, interface: "eth0")
        #expect(try ConfigDecoder.decode(good).interfaces[0].firewall?.rules == fw.rules)
        let bad = good.replacingOccurrences(of: "\"name\":\"acl-100\",", with: "\"name\":\"acl-100\",\"weight\":1,")
            .replacingOccurrences(of: "\"name\":\"acl-20000\",", with: "\"name\":\"acl-20000\",\"proto\":\"sctpp\",\"x\":1,")
        do throws(ConfigErrors) {
            _ = try ConfigDecoder.decode(bad)
            Issue.record("the broken file decoded")
        } catch {
            let paths = error.errors.map(\.path)
            #expect(paths.first == "interfaces[0].firewall.rules[100].weight")
            #expect(paths.contains { $0.hasPrefix("interfaces[0].firewall.rules[20000]") })
            #expect(paths.firstIndex { $0.hasPrefix("interfaces[0].firewall.rules[20000]") }! > paths.firstIndex(of: "interfaces[0].firewall.rules[100].weight")!)
        }
        let duplicate = good.replacingOccurrences(of: "\"name\":\"acl-24000\",", with: "\"name\":\"acl-7\",")
        do throws(ConfigErrors) {
            _ = try ConfigDecoder.decode(duplicate)
            Issue.record("a duplicate name decoded")
        } catch {
            #expect(error.errors.map(\.path) == ["interfaces[0].firewall.rules[24000].name"])
        }
    }
}

@Suite("Warnings: valid configs that are almost surely a mistake")
struct ConfigWarningTests {
    @Test("IPv4-mapped prefixes, multicast and broadcast VIPs, and a VIP that is its own backend are named; a clean config has none")
    func warnings() throws {
        let text = #"""
        {"version": 1, "interfaces": [{"name": "eth0",
          "firewall": {"default_action": "allow", "rules": [{"name": "m", "action": "drop", "src": ["10.0.0.0/8", "::ffff:192.0.2.0/120"]}]},
          "rate_limits": [{"name": "r", "per": "rule", "dst": ["::ffff:10.0.0.1/128"], "packets_per_second": 10, "burst_packets": 10}],
          "load_balancers": [
            {"name": "mc", "vip": "239.1.1.1", "proto": "udp", "port": 53, "backends": [{"address": "10.1.0.2", "port": 53}]},
            {"name": "bc", "vip": "255.255.255.255", "proto": "udp", "port": 67, "backends": [{"address": "10.1.0.3", "port": 67}]},
            {"name": "self", "vip": "10.0.0.10", "proto": "tcp", "port": 80, "backends": [{"address": "10.0.0.10", "port": 8080}]},
            {"name": "mc6", "vip": "ff02::1", "proto": "udp", "port": 53, "backends": [{"address": "fd01::2", "port": 53}]}]}]}
        """#
        let lines = ConfigWarnings.check(try ConfigDecoder.decode(text)).map(\.description)
        #expect(lines == [
            "interfaces[0].firewall.rules[0].src[1]: ::ffff:192.0.2.0/120 is an IPv4-mapped IPv6 prefix, which matches no packet; write the IPv4 prefix 192.0.2.0/24",
            "interfaces[0].rate_limits[0].dst[0]: ::ffff:10.0.0.1/128 is an IPv4-mapped IPv6 prefix, which matches no packet; write the IPv4 prefix 10.0.0.1/32",
            "interfaces[0].load_balancers[0].vip: 239.1.1.1 is a multicast address; a VIP takes unicast traffic, so no client reaches it",
            "interfaces[0].load_balancers[1].vip: 255.255.255.255 is a broadcast address; a VIP takes unicast traffic, so no client reaches it",
            "interfaces[0].load_balancers[2].backends[0].address: 10.0.0.10 is the VIP itself; packets sent to this backend come back to the load balancer",
            "interfaces[0].load_balancers[3].vip: ff02::1 is a multicast address; a VIP takes unicast traffic, so no client reaches it",
        ], "\(lines)")
        #expect(ConfigWarnings.check(try ConfigDecoder.decode(NATCompilerTests.config)).isEmpty)
    }
}
