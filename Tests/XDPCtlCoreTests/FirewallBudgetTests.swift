import CXDPCtlABI
import Testing
@testable import XDPCtlCore

@Suite("Firewall budget: refused before any compiling")
struct FirewallBudgetTests {
    /// The errors InterfaceTables gives the first interface of `text` (as validate and apply do).
    static func problems(_ text: String) throws -> [String] {
        let iface = try ConfigDecoder.decode(text).interfaces[0]
        return InterfaceTables(iface, at: 0, slots: Slots(fresh: iface), compiler: FirewallCompiler()).errors.map(\.description)
    }

    static func firewall(_ rules: String) -> String {
        #"{"version": 1, "interfaces": [{"name": "eth0", "firewall": {"default_action": "allow", "rules": [\#(rules)]}}]}"#
    }

    @Test("more rules than counter slots: refused by count, naming the limit (validate used to say OK and apply then failed with 'the map is full')")
    func tooManyRules() throws {
        let n = Int(DP_MAX_RULES)
        let rules = (0..<n).map { #"{"name": "r\#($0)", "action": "drop", "proto": "udp", "dst_ports": [\#($0 % 60000 + 1)]}"# }
        let errors = try Self.problems(Self.firewall(rules.joined(separator: ", ")))
        #expect(errors == ["interfaces[0].firewall.rules: \(n) rules; expected at most \(n - 1) per interface (the counter slots, one of them the default's)"])
    }

    @Test("a rule of 500 sources × 500 destinations × 20 port ranges (a 17 KB file that took 26 s and 2 GB): refused, naming the rule and the product")
    func multiplicativeRule() throws {
        let srcs = (0..<500).map { #""10.\#($0 / 250).\#($0 % 250).0/24""# }.joined(separator: ", ")
        let dsts = (0..<500).map { #""172.16.\#($0 / 250).\#($0 % 250)""# }.joined(separator: ", ")
        let ports = (0..<20).map { "\(1000 + $0 * 10)" }.joined(separator: ", ")
        let text = Self.firewall(#"{"name": "ok", "action": "allow", "proto": "tcp", "dst_ports": [22]}, {"name": "huge", "action": "drop", "proto": "tcp", "src": [\#(srcs)], "dst": [\#(dsts)], "dst_ports": [\#(ports)]}"#)
        #expect(try Self.problems(text) == [
            "interfaces[0].firewall.rules[1]: rule \"huge\" expands to 5000000 match boxes (500 sources × 500 destinations × 1 source port ranges × 20 destination port ranges); expected at most \(FirewallBudget.maxBoxes) per interface, all rules together: split the rule, or use fewer, wider prefixes and port ranges",
        ])
    }

    @Test("many modest rules that add up past the budget name the rule that crosses it")
    func cumulative() throws {
        let srcs = (0..<16).map { #""10.0.\#($0).0/24""# }.joined(separator: ", ")
        let ports = (0..<16).map { "\(2000 + $0)" }.joined(separator: ", ")
        let rules = (0..<1100).map { #"{"name": "r\#($0)", "action": "drop", "proto": "tcp", "src": [\#(srcs)], "dst_ports": [\#(ports)]}"# }
        let errors = try Self.problems(Self.firewall(rules.joined(separator: ", ")))
        // 256 boxes a rule: the default and 1,024 rules make 262,145.
        #expect(errors.count == 1 && errors[0].hasPrefix("interfaces[0].firewall.rules[1023]: rule \"r1023\" brings the firewall to 262145 match boxes (this rule: 16 sources"), "\(errors)")
    }

    @Test("families pair up as the compiler expands them: v4 sources meet v4 destinations only")
    func perFamily() throws {
        let rule = FirewallRule(name: "x", action: .drop, src: [try IPPrefix("10.0.0.0/8"), try IPPrefix("2001:db8::/32"), try IPPrefix("fd00::/8")],
                                dst: [try IPPrefix("10.1.0.0/16"), try IPPrefix("2001:db8:1::/48")], dstPorts: [PortRange(1, 2), PortRange(5, 5)])
        #expect(FirewallBudget.expansion(rule).0 == (1 * 1 + 2 * 1) * 2)
        #expect(FirewallBudget.expansion(rule).0 == Boxes.expand(src: rule.src, dst: rule.dst, proto: nil, srcPorts: [], dstPorts: rule.dstPorts).count)
    }
}
