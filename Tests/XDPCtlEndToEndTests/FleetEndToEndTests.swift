import Foundation
import Glibc
import Testing

@Suite("End to end: a fleet of load balancers behind BGP and ECMP", .serialized)
struct FleetEndToEndTests {
    @Test("three nodes announce through BIRD; the router spreads 1,000 connections over them; a crashed node's connections and a drained node's continue on their backends; a VIP whose backends fail is withdrawn, and one the config drops; a stopping agent withdraws first")
    func fleet() throws {
        let lab = try FleetLab()
        defer { lab.close() }
        let all = lab.nodes.indices.map(lab.node4)
        let all6 = lab.nodes.indices.map(lab.node6)
        // Every node announces every VIP: the router holds one ECMP route for each.
        #expect(try lab.waitForNextHops(lab.vipV4, all, seconds: 30) != nil, "\(lab.route(lab.vipV4))\n\(lab.logs)")
        #expect(try lab.waitForNextHops(lab.altVIP, all) != nil, "\(lab.route(lab.altVIP))")
        #expect(try lab.waitForNextHops(lab.vipV6, all6) != nil, "\(lab.route(lab.vipV6))\n\(lab.logs)")
        let included = (try? String(contentsOfFile: lab.include(0), encoding: .utf8)) ?? ""
        #expect(included.contains("protocol static xdpctl4") && included.contains("route \(lab.vipV4)/32 blackhole;")
            && included.contains("route \(lab.vipV6)/128 blackhole;"), "\(included)")

        // 1,000 long-lived connections (and 60 over IPv6), each on its backend; every
        // node carries some.
        let held = try HeldConnections(client: lab.client, vip: lab.vipV4, port: 8080, count: 1000, timeout: 20)
        defer { held.close() }
        let first = try held.answers()
        #expect(first.count == 1000 && Set(first) == ["b1", "b2", "b3"], "\(Set(first))")
        let carried = try lab.nodes.indices.map { try lab.packets($0, "web") }
        print("fleet: packets to backends by node: \(carried)")
        #expect(carried.allSatisfy { $0 > 0 }, "every node carries some: \(carried)")
        let held6 = try HeldConnections(client: lab.client, vip: "\(lab.vipV6)", port: 8080, count: 60, timeout: 20)
        defer { held6.close() }
        let first6 = try held6.answers()
        #expect(Set(first6) == ["b1", "b2", "b3"], "\(Set(first6))")

        // Node 1 crashes. The router notices when its hold timer (3 s) runs out; meanwhile
        // the connections it carried wait, then continue through the others.
        let killedAt = ContinuousClock.now
        try lab.crash(1)
        held.startAsking()
        let converged = try lab.waitForNextHops(lab.vipV4, [lab.node4(0), lab.node4(2)])
        let converging = ContinuousClock.now - killedAt
        #expect(converged != nil, "the router drops the crashed node: \(lab.route(lab.vipV4))\n\(lab.logs)")
        let afterCrash = try held.answers()
        let kept = zip(first, afterCrash).filter { $0 == $1 }.count
        print("fleet: crash of node 1: \(kept) of 1000 connections kept their backend; the router's route changed after \(converging)")
        #expect(kept >= 990, "\(Dictionary(grouping: afterCrash, by: { $0 }).mapValues(\.count))")

        // Node 0 drains: the router keeps only node 2, and every connection continues.
        let drained = try lab.xdpctl(0, "drain")
        #expect(drained.status == 0 && drained.out.contains("the agent withdrew every announcement"), "\(drained.out) \(drained.err)")
        #expect(try lab.waitForNextHops(lab.vipV4, [lab.node4(2)]) != nil, "\(lab.route(lab.vipV4))")
        let afterDrain = try held.askAgain()
        let keptDrain = zip(first, afterDrain).filter { $0 == $1 }.count
        print("fleet: drain of node 0: \(keptDrain) of 1000 connections kept their backend")
        #expect(keptDrain == 1000, "\(Dictionary(grouping: afterDrain, by: { $0 }).mapValues(\.count))")
        #expect(try held6.askAgain() == first6)
        let status = try lab.xdpctl(0, "status", "--json")
        #expect(status.out.contains(#""drained": true"#), "\(status.out)")

        // The alt VIP's servers stop: its backends fail their checks and node 2 withdraws
        // it; web stays.
        lab.stopAltServers()
        #expect(try lab.waitForNextHops(lab.altVIP, []) != nil, "\(lab.route(lab.altVIP))\n\(lab.logs)")
        #expect(try lab.nextHops(lab.vipV4) == [lab.node4(2)])

        // A config without web6: node 2's agent withdraws it before it applies.
        try lab.withoutWeb6.write(toFile: lab.configFile + ".new", atomically: false, encoding: .utf8)
        #expect(rename(lab.configFile + ".new", lab.configFile) == 0)
        #expect(try lab.waitForNextHops(lab.vipV6, []) != nil, "\(lab.route(lab.vipV6))")
        #expect(lab.agents[2]?.waitFor("withdrew the VIPs the new config removes, before applying it") == true, "\(lab.logs)")
        #expect(try lab.nextHops(lab.vipV4) == [lab.node4(2)])

        // Undrained, node 0 announces again; node 2's agent stops and withdraws first,
        // leaving its programs serving.
        let undone = try lab.xdpctl(0, "drain", "--undo", "--json")
        #expect(undone.status == 0 && undone.out.contains(#""agent": "answered""#), "\(undone.out) \(undone.err)")
        #expect(try lab.waitForNextHops(lab.vipV4, [lab.node4(0), lab.node4(2)]) != nil, "\(lab.route(lab.vipV4))")
        #expect(lab.agents[2]?.stop() == 0)
        #expect(lab.agents[2]?.text.contains("withdrew every announcement") == true)
        #expect(try lab.waitForNextHops(lab.vipV4, [lab.node4(0)]) != nil, "\(lab.route(lab.vipV4))")
        #expect(try held.askAgain() == first)
        #expect(try lab.xdpctl(2, "down").status == 0, "down once the agent is gone")
    }
}
