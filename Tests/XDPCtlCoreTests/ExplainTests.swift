import Testing
import XDPCtlWorkloads
@testable import XDPCtlCore

/// `explain` walks the compiled tables as the data path does; these hold it to the
/// first-match reference (rules), a linear reading of the limits, and the Maglev table.
@Suite("Explain")
struct ExplainTests {
    static func iface(_ fw: Firewall?, limits: [RateLimit] = [], balancers: [LoadBalancer] = []) -> InterfaceConfig {
        InterfaceConfig(name: "eth0", xdpMode: .auto, firewall: fw, rateLimits: limits, loadBalancers: balancers, nat: nil)
    }

    @Test("the deciding rule (name, number) or the default agrees with the first-match reference on random rule sets", arguments: [UInt64(11), 12, 13])
    func rules(seed: UInt64) throws {
        var gen = RuleSetGenerator(rng: SeededRandom(seed: seed))
        var checked = 0, byDefault = 0
        for _ in 0..<15 {
            let fw = gen.firewall(rules: 80)
            let explainer = try Explainer(Self.iface(fw))
            for _ in 0..<400 {
                let key = gen.packet(fw)
                let expected = referenceClassify(fw, key)
                let got = explainer.explain(key).decision
                let want: Explanation.Decision = expected.rule.map { .rule(name: fw.rules[$0].name, index: $0, action: fw.rules[$0].action) }
                    ?? .defaultAction(fw.defaultAction)
                if got != want {
                    Issue.record("\(key): explain says \(got), the reference \(want)")
                    return
                }
                if expected.rule == nil { byDefault += 1 }
                checked += 1
            }
        }
        #expect(checked == 6000 && byDefault > 0 && byDefault < checked, "both rules and the default decide some: \(byDefault) of \(checked)")
    }

    @Test("the limit: the first in the list whose fields and TCP flags match; none where the firewall drops")
    func limits() throws {
        let web = RateLimit(name: "syn-web", proto: .tcp, src: [], dst: [], srcPorts: [], dstPorts: [PortRange(80, 80)], tcpFlags: [.syn],
                            per: .source, packetsPerSecond: 10, burstPackets: nil, bytesPerSecond: nil, burstBytes: nil)
        let all = RateLimit(name: "tcp", proto: .tcp, src: [], dst: [], srcPorts: [], dstPorts: [], tcpFlags: [], per: .rule, packetsPerSecond: 1000, burstPackets: nil, bytesPerSecond: nil, burstBytes: nil)
        let fw = Firewall(defaultAction: .allow, rules: [FirewallRule(name: "no-telnet", action: .drop, proto: .tcp, dstPorts: [PortRange(23, 23)])])
        let e = try Explainer(Self.iface(fw, limits: [web, all]))
        func key(_ port: UInt16) -> PacketKey { PacketKey(src: IPAddress("10.1.0.2")!, dst: IPAddress("10.1.0.1")!, proto: 6, srcPort: 40000, dstPort: port) }
        #expect(e.explain(key(80), tcpFlags: 0x02).limit == "syn-web")
        #expect(e.explain(key(80), tcpFlags: 0x12).limit == "syn-web", "the listed flags set, others any")
        #expect(e.explain(key(80), tcpFlags: 0x10).limit == "tcp")
        #expect(e.explain(key(443), tcpFlags: 0x02).limit == "tcp")
        let telnet = e.explain(key(23))
        #expect(!telnet.allowed && telnet.decision == Explanation.Decision.rule(name: "no-telnet", index: 0, action: .drop) && telnet.json.contains(#""rate_limit": null"#))
        #expect(telnet.text.contains("rule \"no-telnet\" (number 1 in the list) decides: drop") && telnet.text.contains("not reached"))
    }

    @Test("the backend a new flow gets is the Maglev table's entry for the flow hash; down and draining backends take none")
    func backends() throws {
        let backends = (1...4).map { LoadBalancer.Backend(address: IPAddress("10.2.0.\($0)")!, port: 8080) }
        var lb = LoadBalancer(name: "web", vip: IPAddress("10.9.0.1")!, proto: .tcp, port: 80, backends: backends)
        lb.healthCheck = LoadBalancer.HealthCheck(kind: .tcp)
        let e = try Explainer(Self.iface(nil, balancers: [lb]))
        let table = Maglev.table(backends.map { Maglev.Backend(key: $0.maglevKey, weight: $0.weight) }, size: lb.tableSize)
        var seen = Set<String>()
        for sport in UInt16(40000)..<40200 {
            let key = PacketKey(src: IPAddress("10.1.0.2")!, dst: lb.vip, proto: 6, srcPort: sport, dstPort: 80)
            let got = e.explain(key)
            let hash = Maglev.flowHash(source: key.src.words, sourcePort: sport, destinationPort: 80)
            #expect(got.balancer == "web" && got.backend == backends[Int(table[Int(hash % UInt32(table.count))])].endpoint)
            seen.insert(got.backend ?? "")
        }
        #expect(seen.count == 4)
        let downOne = try Explainer(Self.iface(nil, balancers: [lb]), down: [LoadBalancerCompiler.backendID(lb, backends[0])])
        let allDown = try Explainer(Self.iface(nil, balancers: [lb]), down: Set(backends.map { LoadBalancerCompiler.backendID(lb, $0) }))
        for sport in UInt16(40000)..<40100 {
            let key = PacketKey(src: IPAddress("10.1.0.2")!, dst: lb.vip, proto: 6, srcPort: sport, dstPort: 80)
            #expect(downOne.explain(key).backend != backends[0].endpoint)
            #expect(allDown.explain(key).backend == nil && allDown.explain(key).balancer == "web")
        }
        let other = e.explain(PacketKey(src: IPAddress("10.1.0.2")!, dst: lb.vip, proto: 6, srcPort: 1, dstPort: 81))
        #expect(other.balancer == nil && other.text.contains("not to a VIP"))
    }
}
