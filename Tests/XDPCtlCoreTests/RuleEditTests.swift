import Testing
import XDPCtlWorkloads
@testable import XDPCtlCore

@Suite("Rule edits found from file bytes")
struct RuleEditTests {
    /// Splicing the decoded fragment into the old list must give the new file's list.
    func check(_ old: String, _ new: String, interface: Int = 0) throws {
        let edit = try #require(RuleEdit(from: old, to: new))
        #expect(edit.interface == interface)
        let before = try ConfigDecoder.decode(old).interfaces[interface].firewall!.rules
        let after = try ConfigDecoder.decode(new).interfaces[interface].firewall!.rules
        let fragment = try #require(RuleEdit.rules(new, edit.newBytes))
        #expect(Array(before[..<edit.replaced.lowerBound]) + fragment + Array(before[edit.replaced.upperBound...]) == after)
        #expect(RuleEdit.rules(old, edit.oldBytes) == Array(before[edit.replaced]))
    }

    @Test func editsAnywhereInTheList() throws {
        let fw = RuleProfile.acl(count: 50, seed: 3)
        let old = RuleProfile.config(fw, interface: "eth0")
        for at in [0, 1, 25, 48, 49] {
            var flipped = fw
            flipped.rules[at].action = flipped.rules[at].action == .allow ? .drop : .allow
            try check(old, RuleProfile.config(flipped, interface: "eth0"))
            var removed = fw
            removed.rules.remove(at: at)
            try check(old, RuleProfile.config(removed, interface: "eth0"))
            var inserted = fw
            inserted.rules.insert(FirewallRule(name: "new", action: .drop, src: [try IPPrefix("10.9.9.0/24")], dst: [], proto: nil, srcPorts: [], dstPorts: []), at: at)
            try check(old, RuleProfile.config(inserted, interface: "eth0"))
        }
        var appended = fw
        appended.rules.append(FirewallRule(name: "last", action: .allow, src: [], dst: [], proto: .udp, srcPorts: [], dstPorts: [PortRange(53, 53)]))
        try check(old, RuleProfile.config(appended, interface: "eth0"))
        try check(RuleProfile.config(Firewall(defaultAction: fw.defaultAction, rules: []), interface: "eth0"), RuleProfile.config(appended, interface: "eth0"))
        try check(old, RuleProfile.config(Firewall(defaultAction: fw.defaultAction, rules: []), interface: "eth0"))
    }

    @Test func prettyPrintedFilesAndTheSecondInterface() throws {
        let old = """
        {
          "version": 1,
          "interfaces": [
            {"name": "eth0", "firewall": {"rules": [{"name": "a", "action": "drop", "src": ["10.0.0.0/8"]}]}},
            {
              "name": "eth1",
              "firewall": {
                "default_action": "drop",
                "rules": [
                  {"name": "ssh", "action": "allow", "proto": "tcp", "dst_ports": [22]},
                  {"name": "web", "action": "allow", "proto": "tcp", "dst_ports": [80, 443]}
                ]
              }
            }
          ]
        }
        """
        try check(old, old.replacingOccurrences(of: "[80, 443]", with: "[8080]"), interface: 1)
        try check(old, old.replacingOccurrences(of: ",\n          {\"name\": \"web\", \"action\": \"allow\", \"proto\": \"tcp\", \"dst_ports\": [80, 443]}", with: ""), interface: 1)
        try check(old, old.replacingOccurrences(of: "\"name\": \"ssh\"", with: "\"name\": \"sshd\""), interface: 1)
    }

    @Test func changesOutsideARuleListAreNotRuleEdits() throws {
        let old = #"{"version": 1, "interfaces": [{"name": "eth0", "firewall": {"default_action": "allow", "rules": [{"name": "a", "action": "drop", "src": ["10.0.0.0/8"]}]}}]}"#
        #expect(RuleEdit(from: old, to: old) == nil)
        #expect(RuleEdit(from: old, to: old.replacingOccurrences(of: "\"allow\"", with: "\"drop\"")) == nil)
        #expect(RuleEdit(from: old, to: old.replacingOccurrences(of: "eth0", with: "eth1")) == nil)
        // A fragment that is not a list of valid rules decodes to nil (the full decoder says why).
        let bad = old.replacingOccurrences(of: "10.0.0.0/8", with: "10.0.0.1/8")
        let edit = try #require(RuleEdit(from: old, to: bad))
        #expect(RuleEdit.rules(bad, edit.newBytes) == nil)
    }
}
