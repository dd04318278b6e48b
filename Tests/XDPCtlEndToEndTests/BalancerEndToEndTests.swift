import Foundation
import Glibc
import Testing
import XDPCtlCore

/// Real TCP and UDP through an XDP load balancer: a client namespace, the LB namespace
/// and backend namespaces with real servers (see BalancerLab).
@Suite("End to end: load balancing real connections", .serialized)
struct BalancerEndToEndTests {
    /// Shares of `names` per backend name.
    static func shares(_ names: [String]) -> [String: Double] {
        var counts: [String: Int] = [:]
        for n in names { counts[n, default: 0] += 1 }
        return counts.mapValues { Double($0) / Double(names.count) }
    }

    @Test("600 TCP connections (curl) all succeed and spread by weight 1:2:1, within 7 points; stats and conntrack agree")
    func tcpByWeight() throws {
        let lab = try BalancerLab(backends: 3)
        defer { lab.close() }
        let applied = try lab.apply(lab.config(lab.balancer("web", [(0, 100, "active"), (1, 200, "active"), (2, 100, "active")])))
        #expect(applied.status == 0, "\(applied.err)")

        let answers = try lab.curl(600)
        #expect(answers.filter(\.isEmpty).count == 0, "every connection succeeds: \(answers.filter(\.isEmpty).count) failed")
        let share = Self.shares(answers)
        // 7 points is about 3.5 standard deviations of a 50 % share over 600 connections.
        for (name, want) in [("b1", 0.25), ("b2", 0.5), ("b3", 0.25)] {
            #expect(abs((share[name] ?? 0) - want) <= 0.07, "\(name): \(share[name] ?? 0), weight share \(want)")
        }

        let stats = try lab.stats()
        let connections = lab.backendCounter(stats, "web", "connections")
        for i in 0..<3 {
            let served = answers.filter { $0 == "b\(i + 1)" }.count
            #expect(connections[lab.backendV4(i)] == served, "backend \(i + 1): \(connections) counted, \(served) served")
        }
        #expect(stats["drop_reasons"]?["no_backend"]?.int == 0)
        let conntrack = try lab.xdpctl("conntrack", "--json")
        #expect(conntrack.status == 0)
        let established = conntrack.out.components(separatedBy: #""state": "established""#).count - 1
        #expect(established == 600, "conntrack lists \(established) established connections")
    }

    @Test("IPv6: 300 TCP connections all succeed and spread evenly over 3 backends, within 9 points")
    func tcpIPv6() throws {
        let lab = try BalancerLab(backends: 3)
        defer { lab.close() }
        #expect(try lab.apply(lab.config(lab.balancer("web6", v6: true, [(0, 1, "active"), (1, 1, "active"), (2, 1, "active")]))).status == 0)
        let answers = try lab.curl(300, v6: true)
        #expect(answers.filter(\.isEmpty).isEmpty, "\(answers.filter(\.isEmpty).count) failed")
        for (name, share) in Self.shares(answers) { #expect(abs(share - 1.0 / 3) <= 0.09, "\(name): \(share)") }
    }

    @Test("UDP over IPv4 and IPv6: 300 datagrams each get an answer from the VIP, spread evenly within 9 points")
    func udp() throws {
        let lab = try BalancerLab(backends: 3)
        defer { lab.close() }
        let all: [(index: Int, weight: Int, state: String)] = [(0, 1, "active"), (1, 1, "active"), (2, 1, "active")]
        let config = lab.config(lab.balancer("dns", proto: "udp", port: 53, backendPort: 5353, all) + ", "
                                + lab.balancer("dns6", v6: true, proto: "udp", port: 53, backendPort: 5353, all))
        let applied = try lab.apply(config)
        #expect(applied.status == 0, "\(applied.err)")
        for v6 in [false, true] {
            let answers = try lab.udp(300, port: 53, v6: v6)
            #expect(answers.allSatisfy { $0.hasPrefix("b") }, "v6 \(v6): \(Set(answers))")
            for (name, share) in Self.shares(answers) { #expect(abs(share - 1.0 / 3) <= 0.09, "v6 \(v6) \(name): \(share)") }
        }
        let packets = lab.backendCounter(try lab.stats(), "dns", "packets")
        #expect(packets.values.reduce(0, +) == 300, "\(packets)")
    }

    @Test("with connections open: a draining backend keeps them and takes no new ones; a removed backend's are reset; an added backend takes new ones only")
    func drainRemoveAdd() throws {
        let lab = try BalancerLab(backends: 4)
        defer { lab.close() }
        func apply(_ which: [(index: Int, weight: Int, state: String)]) throws {
            let r = try lab.apply(lab.config(lab.balancer("web", which)))
            #expect(r.status == 0, "\(r.err)")
        }
        try apply([(0, 1, "active"), (1, 1, "active"), (2, 1, "active")])
        let held = try HeldConnections(lab, count: 60)
        defer { held.close() }
        let first = try held.answers()
        #expect(Set(first) == ["b1", "b2", "b3"], "60 connections reach all three: \(first)")

        // Drain b2: its connections stay, new ones avoid it.
        try apply([(0, 1, "active"), (1, 1, "draining"), (2, 1, "active")])
        #expect(try held.askAgain() == first, "every open connection stays on its backend")
        let afterDrain = try lab.curl(100)
        #expect(Set(afterDrain) == ["b1", "b3"], "new connections avoid the draining backend: \(Set(afterDrain))")

        // Remove b3: its connections are reset at once; the others stay.
        try apply([(0, 1, "active"), (1, 1, "draining")])
        let afterRemove = try held.askAgain()
        for (before, now) in zip(first, afterRemove) {
            if before == "b3" {
                #expect(now.hasPrefix("error:"), "a connection to the removed backend is reset, not left hanging: \(now)")
            } else {
                #expect(now == before)
            }
        }
        #expect(Set(try lab.curl(50)) == ["b1"])

        // Add b4: the open connections stay where they are; new ones go to b1 and b4.
        try apply([(0, 1, "active"), (1, 1, "draining"), (3, 1, "active")])
        let afterAdd = try held.askAgain()
        #expect(zip(first, afterAdd).allSatisfy { $0.0 == "b3" || $0.0 == $0.1 }, "\(afterAdd)")
        #expect(Set(try lab.curl(100)) == ["b1", "b4"])
    }
}
