import Foundation
import Glibc
import Testing
import XDPCtlCore

/// Real connections through SNAT and DNAT: a LAN client, a router running xdpctl, a WAN
/// server (see NATLab).
@Suite("End to end: NAT with real connections", .serialized)
struct NATEndToEndTests {
    /// Masquerade both families on the WAN interface, a 10-port SNAT rule for the second
    /// client address, and DNAT of the router's port 8080 to the LAN server's 8000.
    static func rules(_ lab: NATLab) -> String {
        #"""
        {"snat": [{"name": "tiny", "src": ["\#(lab.client2V4)/32"], "port_range": "30000-30009"},
                  {"name": "tiny6", "src": ["\#(lab.client2V6)/128"], "port_range": "30000-30009"},
                  {"name": "masq", "src": ["10.\#(lab.net).1.0/24"], "port_range": "20000-29999"},
                  {"name": "masq6", "src": ["fd00:\#(lab.net):1::/64"], "port_range": "20000-29999"}],
         "dnat": [{"name": "web", "proto": "tcp", "dst": "\#(lab.routerWanV4)", "dst_port": 8080, "to_address": "\#(lab.clientV4)", "to_port": 8000},
                  {"name": "web6", "proto": "tcp", "dst": "\#(lab.routerWanV6)", "dst_port": 8080, "to_address": "\#(lab.clientV6)", "to_port": 8000}]}
        """#
    }

    /// The peers the server saw, as (address, port), from lines "ADDRESS PORT".
    static func peers(_ lines: [String]) -> [(address: String, port: Int)] {
        lines.compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 2, let port = Int(f[1]) else { return nil }
            return (String(f[0]).replacingOccurrences(of: "::ffff:", with: ""), port)
        }
    }

    @Test("through SNAT, IPv4 and IPv6, with the LAN side's fast path: 2,000 TCP connections, UDP (also fragmented) and ping succeed; the server sees only the router's address, ports in the range")
    func snat() throws {
        let lab = try NATLab()
        defer { lab.close() }
        let applied = try lab.apply(lab.config(Self.rules(lab), fastPath: "on"))
        try #require(applied.status == 0, "\(applied.err)")

        // From the first LAN address: IPv6 source selection may prefer the second, which
        // the 10-port rules take.
        for (server, address, client) in [(lab.serverV4, lab.routerWanV4, lab.clientV4), (lab.serverV6, lab.routerWanV6, lab.clientV6)] {
            let tcp = try lab.python(lab.lan, NATLab.tcpClient, [server, "7000", "2000", client])
            let seen = Self.peers(tcp)
            #expect(seen.count == 2000, "every connection answers: \(tcp.filter { $0.hasPrefix("FAIL") }.prefix(3))")
            #expect(seen.allSatisfy { $0.address == address && (20000...29999).contains($0.port) },
                    "the server sees \(address) with ports 20000-29999: \(seen.filter { $0.address != address || !(20000...29999).contains($0.port) }.prefix(3))")
            let udp = Self.peers(try lab.python(lab.lan, NATLab.udpClient, [server, "7000", "20", client]))
            #expect(udp.count == 20 && udp.allSatisfy { $0.address == address && (20000...29999).contains($0.port) }, "UDP through SNAT: \(udp.prefix(3))")
            // 4,000-byte datagrams each way: three fragments out (tc), three back (XDP).
            let big = Self.peers(try lab.python(lab.lan, NATLab.udpClient, [server, "7000", "10", client, "4000"]))
            #expect(big.count == 10 && big.allSatisfy { $0.address == address }, "fragmented UDP through SNAT: \(big.prefix(3))")
            let ping = try sh(["ip", "netns", "exec", lab.lan, "ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", client, server])
            #expect(ping.status == 0 && ping.out.contains(" 0% packet loss"), "ping \(server): \(ping.out)")
        }
        let stats = try lab.json("stats", "--interface", lab.routerWanIf)
        let nat = stats["interfaces"]?.arrayValue?.first?["nat"]?.arrayValue ?? []
        for name in ["masq", "masq6"] {
            let rule = nat.first { $0["name"]?.stringValue == name }
            #expect((rule?["connections"]?.integer(Int.self) ?? 0) >= 2020, "\(name): \(String(describing: rule))")
        }
        #expect(stats["interfaces"]?.arrayValue?.first?["tc_egress"]?["verdicts"]?["pass"]?.integer(Int.self) ?? 0 > 0)
        // The fast path: the LAN side's XDP translated established flows and sent them
        // out the WAN side itself (their first packets went through the stack and tc).
        let lan = try lab.json("stats", "--interface", lab.routerLanIf)["interfaces"]?.arrayValue?.first
        #expect((lan?["verdicts"]?["redirect"]?.integer(Int.self) ?? 0) > 4000, "\(String(describing: lan?["verdicts"]))")
        let status = try lab.json("status")["interfaces"]?.arrayValue ?? []
        #expect(status.map { $0["nat_fast_path"] == .bool(true) } == [true, false], "status: on for the LAN side (\"on\"), off for the WAN side (a veth, \"auto\")")
    }

    @Test("ICMP errors through SNAT, IPv4 and IPv6: traceroute sees the hop past the router (time exceeded) and the end (port unreachable); a TCP upload over a path with a smaller MTU completes (packet too big)")
    func icmpErrors() throws {
        let lab = try NATLab(far: true)
        defer { lab.close() }
        try #require(try lab.apply(lab.config(Self.rules(lab))).status == 0)
        for (v6, server, hop, client) in [(false, lab.farV4, lab.serverV4, lab.clientV4), (true, lab.farV6, lab.serverV6, lab.clientV6)] {
            let trace = try sh(["ip", "netns", "exec", lab.lan, "traceroute", v6 ? "-6" : "-4", "-n", "-q", "1", "-w", "2", "-m", "5",
                                "-s", client, server], timeout: 60)
            let hops = trace.out.split(separator: "\n").dropFirst().map { $0.split(separator: " ").dropFirst().first.map(String.init) ?? "" }
            #expect(hops.contains(hop) && hops.last == server, "traceroute to \(server): hops \(hops), \(trace.err)")
            // 400 KB over a link whose MTU is 1280: the first full-size segments meet packet too big.
            let sent = try lab.python(lab.lan, NATLab.bulkClient, [server, "7000", "400000", client], timeout: 40)
            #expect(sent == ["400000"], "upload to \(server) over the smaller MTU: \(sent)")
        }
        let stats = try lab.json("stats", "--interface", lab.routerWanIf)
        #expect((stats["interfaces"]?.arrayValue?.first?["verdicts"]?["redirect"]?.integer(Int.self) ?? 0) > 0)
    }

    @Test("a 10-port SNAT range: the 11th concurrent flow is dropped and counted as nat_no_port; the 10 live flows are unharmed; conntrack lists them")
    func exhaustion() throws {
        let lab = try NATLab()
        defer { lab.close() }
        try #require(try lab.apply(lab.config(Self.rules(lab))).status == 0)

        for (source, server) in [(lab.client2V4, lab.serverV4), (lab.client2V6, lab.serverV6)] {
            let out = try lab.python(lab.lan, NATLab.holdClient, [server, "7000", "10", source])
            let held = Self.peers(out.filter { $0.hasPrefix("held ") }.map { String($0.dropFirst(5)) })
            #expect(held.count == 10 && Set(held.map(\.port)) == Set(30000...30009), "10 flows take the 10 ports: \(held.map(\.port))")
            #expect(out.contains { $0.hasPrefix("extra FAIL") }, "the 11th flow gets no port: \(out.suffix(2))")
            #expect(out.last == "alive 10", "the live flows still answer: \(out.last ?? "")")
        }
        let stats = try lab.json("stats", "--interface", lab.routerWanIf)
        let iface = stats["interfaces"]?.arrayValue?.first
        for name in ["tiny", "tiny6"] {
            let rule = iface?["nat"]?.arrayValue?.first { $0["name"]?.stringValue == name }
            #expect((rule?["no_port"]?.integer(Int.self) ?? 0) >= 1, "\(name) counts the refused flow: \(String(describing: rule))")
        }
        #expect((iface?["tc_egress"]?["drop_reasons"]?["nat_no_port"]?.integer(Int.self) ?? 0) >= 2)

        // conntrack --json: the 20 held connections (closed by now: FIN seen) map into 30000-30009.
        let table = try lab.json("conntrack").self["nat"]?.arrayValue ?? []
        let tiny = table.filter { ["tiny", "tiny6"].contains($0["rule"]?.stringValue ?? "") }
        #expect(tiny.count == 20, "conntrack lists the 20 connections: \(tiny.count)")
        #expect(tiny.allSatisfy { e in
            let port = e["reply"]?["dport"]?.integer(Int.self) ?? 0
            return (30000...30009).contains(port) && e["reply"]?["src"]?.stringValue == e["original"]?["dst"]?.stringValue
                && ["closing", "closed"].contains(e["state"]?.stringValue ?? "")
        }, "reply tuples name the mapped ports: \(tiny.prefix(1))")
        let flushed = try lab.xdpctl("conntrack", "flush", "--rule", "tiny")
        #expect(flushed.out == "flushed 10 NAT connections\n", "\(flushed.out)\(flushed.err)")
    }

    @Test("through DNAT, IPv4 and IPv6: an outside client reaches the inside server by the router's address and port; the server sees the client's real address")
    func dnat() throws {
        let lab = try NATLab()
        defer { lab.close() }
        try #require(try lab.apply(lab.config(Self.rules(lab), fastPath: "on")).status == 0)
        for (router, client) in [(lab.routerWanV4, lab.serverV4), (lab.routerWanV6, lab.serverV6)] {
            let seen = Self.peers(try lab.python(lab.wan, NATLab.tcpClient, [router, "8080", "50"]))
            #expect(seen.count == 50 && seen.allSatisfy { $0.address == client }, "the inside server sees \(client): \(seen.prefix(3))")
        }
        let table = try lab.json("conntrack")["nat"]?.arrayValue ?? []
        #expect(table.filter { $0["kind"]?.stringValue == "dnat" }.count == 100, "conntrack lists the 100 DNAT connections")
    }

    @Test("removing a rule ends its connections; an apply that keeps a rule keeps its connections")
    func applies() throws {
        let lab = try NATLab()
        defer { lab.close() }
        try #require(try lab.apply(lab.config(Self.rules(lab))).status == 0)
        _ = try lab.python(lab.lan, NATLab.udpClient, [lab.serverV4, "7000", "3", lab.clientV4])
        _ = try lab.python(lab.wan, NATLab.tcpClient, [lab.routerWanV4, "8080", "2"])
        func count(_ rule: String) throws -> Int {
            (try lab.json("conntrack")["nat"]?.arrayValue ?? []).filter { $0["rule"]?.stringValue == rule }.count
        }
        #expect(try count("masq") == 3 && count("web") == 2)
        // Keep only masq: the DNAT rules' connections go, masq's stay.
        let onlySnat = #"{"snat": [{"name": "masq", "src": ["10.\#(lab.net).1.0/24"], "port_range": "20000-29999"}]}"#
        let r = try lab.apply(lab.config(onlySnat))
        #expect(r.status == 0, "\(r.err)")
        #expect(try count("masq") == 3, "a kept rule keeps its connections")
        #expect(try count("web") == 0, "a removed rule's connections end")
        // No NAT left: the tc program goes.
        #expect(try lab.apply(lab.config("{}")).status == 0)
        let status = try lab.json("status")
        let wan = status["interfaces"]?.arrayValue?.first { $0["name"]?.stringValue == lab.routerWanIf }
        #expect(wan?["tc_egress"] == .null, "no tc program without NAT: \(String(describing: wan?["tc_egress"]))")
    }
}
