import Foundation
import Glibc
import Testing
import XDPCtlCore

@Suite("End to end: veth pairs in network namespaces", .serialized)
struct EndToEndTests {
    static let rules = #"""
        {"name": "blocklist", "action": "drop", "src": ["SRC4/32", "SRC6"]},
        {"name": "no-2222", "action": "drop", "proto": "tcp", "dst_ports": [2222]},
        {"name": "udp-high", "action": "drop", "proto": "udp", "dst_ports": ["1000-2000"]},
        {"name": "web", "action": "allow", "proto": "tcp", "dst_ports": [8080]}
        """#

    func firewall(_ lab: Lab, mode: String = "auto") -> String {
        lab.config(mode: mode, rules: Self.rules.replacingOccurrences(of: "SRC4", with: lab.blockedV4)
            .replacingOccurrences(of: "SRC6", with: lab.blockedV6))
    }

    @Test("real TCP and UDP through the firewall, IPv4 and IPv6, counted in stats --json")
    func tcpAndUDP() throws {
        let lab = try Lab()
        defer { lab.close() }
        let applied = try lab.apply(firewall(lab))
        #expect(applied.status == 0, "\(applied.err)")
        try lab.startTCPEcho([8080, 2222])

        #expect(try lab.tcpEcho(to: lab.serverV4, port: 8080), "allowed TCP/8080 over IPv4")
        #expect(try lab.tcpEcho(to: lab.serverV6, port: 8080), "allowed TCP/8080 over IPv6")
        #expect(try !lab.tcpEcho(to: lab.serverV4, port: 2222), "TCP/2222 is dropped")
        #expect(try !lab.tcpEcho(to: lab.serverV6, port: 2222), "TCP/2222 over IPv6 is dropped")
        #expect(try !lab.tcpEcho(to: lab.serverV4, port: 8080, from: lab.blockedV4), "blocklisted IPv4 source")
        #expect(try !lab.tcpEcho(to: lab.serverV6, port: 8080, from: lab.blockedV6), "blocklisted IPv6 source")
        #expect(try lab.udpDelivered(to: lab.serverV4, port: 5353, count: 5) == 5, "UDP/5353 passes")
        #expect(try lab.udpDelivered(to: lab.serverV6, port: 1500, count: 5) == 0, "UDP/1500 is dropped")

        let s = try lab.stats()
        #expect(s["name"] == .string(lab.serverIf))
        #expect(rulePackets(s, "web") >= 4, "two echoed connections, several packets each")
        #expect(rulePackets(s, "no-2222") >= 2, "SYNs to 2222 (retransmits may add more)")
        #expect(rulePackets(s, "blocklist") >= 2)
        #expect(rulePackets(s, "udp-high") == 5)
        let dropped = s["verdicts"]?["drop"]?.int ?? -1
        #expect(dropped == s["drop_reasons"]?["firewall"]?.int, "every drop here is the firewall's")
        #expect(dropped == rulePackets(s, "no-2222") + rulePackets(s, "blocklist") + rulePackets(s, "udp-high"))
        #expect((s["rx_packets"]?.int ?? 0) == (s["verdicts"]?["pass"]?.int ?? -1) + dropped)
        #expect(s["firewall_default"]?["packets"]?.int ?? 0 > 0, "UDP/5353, ND and replies fall to the default")

        // --watch reports rates: one JSON document per interval.
        let watch = try lab.xdpctl("stats", "--json", "--watch", "0.3", "--count", "2")
        #expect(watch.status == 0)
        let reports = watch.out.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
        #expect(reports.count == 2, "\(watch.out)")
        let status = try lab.xdpctl("status", "--json")
        #expect(status.out.contains("\"attached\": true") && status.out.contains("\"memory_bytes\""), "\(status.out)")
    }

    @Test("fragmented UDP under default drop: an allowed port's 4,000-byte datagrams arrive whole, a dropped port's never (IPv4 and IPv6)")
    func fragmentsUnderDefaultDrop() throws {
        let lab = try Lab()
        defer { lab.close() }
        let rules = #"{"name": "nd", "action": "allow", "proto": "icmpv6"}, {"name": "ping", "action": "allow", "proto": "icmp"}, {"name": "app", "action": "allow", "proto": "udp", "dst_ports": [9000, 9002]}, {"name": "blocked", "action": "drop", "proto": "udp", "dst_ports": [9001, 9003]}"#
        let applied = try lab.apply(lab.config(defaultAction: "drop", rules: rules))
        #expect(applied.status == 0, "\(applied.err)")
        // Ports of their own per family: a v4 receiver left running holds its port for v6.
        for (address, port) in [(lab.serverV4, 9000), (lab.serverV6, 9002)] {
            let allowed = try lab.udpDelivered(to: address, port: port, count: 5, size: 4000)
            #expect(allowed == 5, "fragmented UDP/\(port) to \(address): \(allowed) of 5 arrived")
            let blocked = try lab.udpDelivered(to: address, port: port + 1, count: 5, size: 4000)
            #expect(blocked == 0, "fragmented UDP/\(port + 1) to \(address): \(blocked) of 5 arrived")
        }
        let s = try lab.stats()
        let app = s["rules"].flatMap { r -> JSONValue? in
            guard case .array(let list) = r else { return nil }
            return list.first { $0["name"] == .string("app") }
        }
        // Each datagram is 3 fragments; later ones are counted to the first one's rule.
        #expect((app?["packets"]?.int ?? 0) >= 30, "app counted \(app?["packets"]?.int ?? 0) packets (3 fragments × 10 datagrams)")
    }

    @Test("apply is idempotent; a failed apply changes nothing; down removes everything")
    func applySemantics() throws {
        let lab = try Lab()
        defer { lab.close() }
        #expect(try lab.apply(firewall(lab)).status == 0)
        let before = try lab.xdpctl("status", "--json").out
        #expect(before.contains("\"generation\": 1"))

        let again = try lab.apply(firewall(lab))
        #expect(again.status == 0 && again.out.contains("no changes"), "\(again.out)")

        let bad = try lab.apply(lab.config(rules: #"{"name": "x", "action": "drop", "src": ["10.1.2.300"]}"#))
        #expect(bad.status == 1)
        #expect(bad.err.contains("interfaces[0].firewall.rules[0].src[0]"), "\(bad.err)")
        let missing = try lab.apply(#"{"version": 1, "interfaces": [{"name": "nosuch0"}]}"#)
        #expect(missing.status == 1)
        #expect(missing.err.contains(#"interfaces[0].name: no interface "nosuch0" in network namespace"#), "\(missing.err)")
        let badCheck = try lab.apply(#"{"version": 1, "interfaces": [{"name": "\#(lab.serverIf)", "load_balancers": [{"name": "w", "vip": "10.0.0.10", "proto": "tcp", "port": 80, "backends": [{"address": "10.1.0.2", "port": 8080}], "health_check": {"type": "tcp", "interval_ms": 1000, "timeout_ms": 5000}}]}]}"#)
        #expect(badCheck.status == 1 && badCheck.err.contains("interfaces[0].load_balancers[0].health_check.timeout_ms"), "\(badCheck.err)")
        #expect(try lab.xdpctl("status", "--json").out == before, "failed applies left the running state alone")
        #expect(try lab.tcpEcho(to: lab.serverV4, port: 2222) == false)

        let down = try lab.xdpctl("down")
        #expect(down.status == 0)
        #expect(access(lab.pinRoot, F_OK) != 0, "pins removed")
        let link = try sh(["ip", "-n", lab.server, "link", "show", lab.serverIf])
        #expect(!link.out.contains("xdp"), "no XDP program left: \(link.out)")

        // Nothing applied is not an error.
        for command in ["status", "stats", "conntrack"] {
            let text = try lab.xdpctl(command)
            #expect(text.status == 0 && text.out == "nothing applied under \(lab.pinRoot)\n", "\(command): \(text)")
            let json = try lab.xdpctl(command, "--json")
            #expect(json.status == 0 && json.out == "{\"interfaces\": []}\n", "\(command) --json: \(json)")
        }
    }

    @Test("rule counters survive an apply that keeps the rule; xdp_mode switches and status shows it")
    func countersAndModes() throws {
        let lab = try Lab()
        defer { lab.close() }
        #expect(try lab.apply(firewall(lab, mode: "generic")).status == 0)
        var status = try lab.xdpctl("status", "--json").out
        #expect(status.contains("\"mode\": \"generic\""), "\(status)")
        #expect(try lab.udpDelivered(to: lab.serverV4, port: 1500, count: 3) == 0)

        // Reordered, one rule added, mode changed: udp-high keeps its counter.
        let rules = #"{"name": "new-rule", "action": "drop", "proto": "udp", "dst_ports": [7]},"# + Self.rules
            .replacingOccurrences(of: "SRC4", with: lab.blockedV4).replacingOccurrences(of: "SRC6", with: lab.blockedV6)
        let diff = try lab.xdpctl("diff", "-f", "-", "--netns", lab.server, stdin: lab.config(mode: "native", rules: rules))
        #expect(diff.out.contains("+ \(lab.serverIf): rule \"new-rule\" at position 1") && diff.out.contains("xdp_mode generic -> native"), "\(diff.out)")
        #expect(try lab.apply(lab.config(mode: "native", rules: rules)).status == 0)
        status = try lab.xdpctl("status", "--json").out
        #expect(status.contains("\"mode\": \"native\"") && status.contains("\"generation\": 2"), "\(status)")
        #expect(try lab.udpDelivered(to: lab.serverV4, port: 1500, count: 2) == 0)
        let s = try lab.stats()
        #expect(rulePackets(s, "udp-high") == 5)
        #expect(rulePackets(s, "new-rule") == 0)
    }

    @Test("a rule set that outgrows the table swaps in a bigger program, and a small one again gives the memory back: counters kept, verdicts right")
    func tableGrowth() throws {
        let lab = try Lab()
        defer { lab.close() }
        #expect(try lab.apply(firewall(lab)).status == 0)
        let small = try lab.xdpctl("status", "--json").out
        #expect(small.contains("\"tree_capacity\": 4096"), "\(small)")
        #expect(try lab.udpDelivered(to: lab.serverV4, port: 1500, count: 3) == 0)

        let many = (0..<3000).map { #"{"name": "deny-\#($0)", "action": "drop", "proto": "udp", "dst_ports": [\#(20000 + $0)], "dst": ["\#(lab.serverV4)"]}"# }
        let big = lab.config(rules: Self.rules.replacingOccurrences(of: "SRC4", with: lab.blockedV4)
            .replacingOccurrences(of: "SRC6", with: lab.blockedV6) + "," + many.joined(separator: ","))
        let grown = try lab.apply(big)
        #expect(grown.status == 0, "\(grown.err)")
        let status = try lab.xdpctl("status", "--json").out
        #expect(!status.contains("\"tree_capacity\": 4096") && status.contains("\"attached\": true"), "\(status)")
        func programID(_ s: String) -> String? { s.split(separator: "\n").first { $0.contains("program_id") }.map(String.init) }
        #expect(programID(status) != programID(small), "a new program instance runs")
        #expect(try lab.udpDelivered(to: lab.serverV4, port: 1500, count: 2) == 0)
        #expect(try lab.udpDelivered(to: lab.serverV4, port: 22_999, count: 2) == 0, "a rule from the grown set")
        #expect(try lab.udpDelivered(to: lab.serverV4, port: 5353, count: 2) == 2)
        #expect(try lab.tcpEcho(to: lab.serverV4, port: 2222) == false)
        let s = try lab.stats()
        #expect(rulePackets(s, "udp-high") == 5, "the counter carried over the program swap")
        #expect(rulePackets(s, "deny-2999") == 2)

        // Back to the small rule set: the big table gives its memory back.
        func memory(_ s: String) -> Int? {
            guard case .array(let ifs)? = (try? JSONParser.parse(s))?["interfaces"] else { return nil }
            return ifs.first?["maps"]?["memory_bytes"]?.int
        }
        let shrunk = try lab.apply(firewall(lab))
        #expect(shrunk.status == 0 && shrunk.out.contains("firewall table") && shrunk.out.contains("-> 4096 nodes"), "\(shrunk.out) \(shrunk.err)")
        let after = try lab.xdpctl("status", "--json").out
        #expect(after.contains("\"tree_capacity\": 4096") && programID(after) != programID(status), "\(after)")
        #expect((memory(after) ?? .max) < (memory(status) ?? 0), "kernel memory \(memory(status) ?? -1) -> \(memory(after) ?? -1) bytes")
        #expect(try lab.udpDelivered(to: lab.serverV4, port: 1500, count: 2) == 0)
        #expect(try lab.udpDelivered(to: lab.serverV4, port: 22_998, count: 2) == 2, "the big set's rules are gone")
        #expect(rulePackets(try lab.stats(), "udp-high") == 7, "the counter carried over the program swap back")
    }

    @Test("flipping between two configs under traffic: every packet is decided by one config's rule")
    func atomicFlips() throws {
        let lab = try Lab()
        defer { lab.close() }
        // Both rules exist in both configs (so their counters carry over); only their ports swap.
        let a = lab.config(rules: #"{"name": "b-allows", "action": "allow", "proto": "udp", "dst_ports": [9001]}, {"name": "a-drops", "action": "drop", "proto": "udp", "dst_ports": [9000]}"#)
        let b = lab.config(rules: #"{"name": "b-allows", "action": "allow", "proto": "udp", "dst_ports": [9000]}, {"name": "a-drops", "action": "drop", "proto": "udp", "dst_ports": [9001]}"#)
        #expect(try lab.apply(a).status == 0)
        // A bounded sender: 20,000 datagrams at most, 60 s at most.
        try lab.spawn(lab.client, ["sh", "-c", "i=0; while [ $i -lt 400 ]; do head -c 50000 /dev/zero | socat -u -b 1000 - UDP4-SENDTO:\(lab.serverV4):9000 2>/dev/null; i=$((i+1)); done"])
        var flips = 0
        for i in 0..<41 { // ends on B, so stats list both rules
            let r = try lab.apply(i % 2 == 0 ? b : a)
            #expect(r.status == 0, "\(r.err)")
            flips += 1
        }
        try sh(["pkill", "-f", "UDP4-SENDTO:\(lab.serverV4):9000"])
        usleep(200_000)
        let s = try lab.stats()
        let viaA = rulePackets(s, "a-drops"), viaB = rulePackets(s, "b-allows")
        #expect(flips == 41)
        #expect(viaA > 0 && viaB > 0, "traffic saw both configs (a \(viaA), b \(viaB))")
        #expect(s["verdicts"]?["drop"]?.int == viaA, "drops are exactly config A's rule")
    }
}
