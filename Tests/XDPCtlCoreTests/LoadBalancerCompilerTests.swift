import CXDPCtlABI
import Testing
@testable import XDPCtlCore

/// A config with one interface holding `lbs` (JSON text of the load_balancers list).
func withBalancers(_ lbs: String, more: String = "") -> String {
    #"{"version": 1, "interfaces": [{"name": "eth0", "load_balancers": [\#(lbs)]}\#(more)]}"#
}

@Suite("Load balancers: config and compiled tables")
struct LoadBalancerCompilerTests {
    static let web = #"{"name": "web", "vip": "10.0.0.10", "proto": "tcp", "port": 80, "backends": [{"address": "10.1.0.2", "port": 8080}, {"address": "10.1.0.3", "port": 8080, "weight": 300}, {"address": "10.1.0.4", "port": 8080, "state": "draining"}]}"#

    @Test("bad load balancers are refused, naming the place", arguments: [
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "table_size": 65536, "backends": []}"#),
         #"interfaces[0].load_balancers[0].table_size: 65536 is not valid; expected a prime number (e.g. 65537 or 131071): a prime size lets every backend's walk reach every entry"#),
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "table_size": 7, "backends": []}"#),
         #"interfaces[0].load_balancers[0].table_size: 7 is not valid; expected a prime from 251 to 1048573"#),
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [{"address": "10.1.0.2", "port": 80}, {"address": "10.1.0.2", "port": 80}]}"#),
         #"interfaces[0].load_balancers[0].backends[1]: backend 10.1.0.2:80 is already backends[0]; expected each backend once"#),
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": []}, {"name": "b", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": []}"#),
         #"interfaces[0].load_balancers[1].vip: 10.0.0.1:80/tcp is already the VIP of load balancer "a" on this interface; expected one load balancer per VIP address, port and protocol"#),
        (withBalancers(#"{"name": "a", "vip": "2001:db8::1", "proto": "udp", "port": 53, "backends": [{"address": "10.1.0.2", "port": 53}]}"#),
         #"interfaces[0].load_balancers[0].backends[0].address: backend is IPv4 but the VIP 2001:db8::1 is not; expected the VIP's address family"#),
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [], "health_check": {"type": "http", "path": "health"}}"#),
         #"interfaces[0].load_balancers[0].health_check.path: "health" is not valid; expected a path starting with / (up to 1,024 printable ASCII characters, no spaces; %-encode others)"#),
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [], "health_check": {"type": "http", "path": "/a b"}}"#),
         #"interfaces[0].load_balancers[0].health_check.path: "/a b" is not valid; expected a path starting with / (up to 1,024 printable ASCII characters, no spaces; %-encode others)"#),
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [], "health_check": {"type": "tcp", "expect_status": 200}}"#),
         #"interfaces[0].load_balancers[0].health_check.expect_status: only http checks have expect_status; expected "type": "http", or no expect_status"#),
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [], "health_check": {"type": "http", "expect_status": [200, 700]}}"#),
         #"interfaces[0].load_balancers[0].health_check.expect_status[1]: 700 is not valid; expected an HTTP status from 100 to 599"#),
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [], "health_check": {"type": "http", "expect_status": []}}"#),
         #"interfaces[0].load_balancers[0].health_check.expect_status: the list is empty; expected at least one of HTTP statuses (leave the key out to match all)"#),
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "udp", "port": 53, "backends": [], "health_check": {"type": "tcp"}}"#),
         #"interfaces[0].load_balancers[0].health_check: a UDP load balancer's backends are checked over TCP (xdpctl cannot check a UDP service); expected a "port" that each backend serves over TCP"#),
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [], "health_check": {"type": "icmp"}}"#),
         #"interfaces[0].load_balancers[0].health_check.type: "icmp" is not valid; expected one of "tcp", "http""#),
        (withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [], "health_check": {"type": "tcp", "port": 0}}"#),
         #"interfaces[0].load_balancers[0].health_check.port: 0 is not valid; expected a port number 1-65535"#),
    ])
    func rejected(text: String, message: String) {
        let lines = errors(text)
        #expect(lines.contains(message), "got: \(lines)")
    }

    @Test("the same backend port may serve a TCP and a UDP VIP")
    func tcpAndUDPShareABackend() throws {
        let text = withBalancers(#"{"name": "t", "vip": "10.0.0.1", "proto": "tcp", "port": 53, "backends": [{"address": "10.1.0.2", "port": 53}]}, {"name": "u", "vip": "10.0.0.1", "proto": "udp", "port": 53, "backends": [{"address": "10.1.0.2", "port": 53}]}"#)
        #expect(try ConfigDecoder.decode(text).interfaces[0].loadBalancers.count == 2)
    }

    @Test("one backend endpoint may serve several VIPs, on one interface or several (replies go by connection)")
    func backendServesSeveralVIPs() throws {
        let text = withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [{"address": "10.1.0.2", "port": 80}]}, {"name": "b", "vip": "10.0.0.3", "proto": "tcp", "port": 80, "backends": [{"address": "10.1.0.2", "port": 80}]}"#,
                                 more: #", {"name": "eth1", "load_balancers": [{"name": "c", "vip": "10.0.0.2", "proto": "tcp", "port": 80, "backends": [{"address": "10.1.0.2", "port": 80}]}]}"#)
        let config = try ConfigDecoder.decode(text)
        #expect(config.interfaces.map(\.loadBalancers.count) == [2, 1])
    }

    @Test("tables: one VIP entry per balancer, its Maglev table in the ring, draining backends out of it")
    func tables() throws {
        let lbs = try ConfigDecoder.decode(withBalancers(Self.web + #", {"name": "dns", "vip": "2001:db8::53", "proto": "udp", "port": 53, "table_size": 251, "backends": [{"address": "2001:db8:1::2", "port": 53}]}"#)).interfaces[0].loadBalancers
        let ids = LoadBalancerCompiler.backendIDs(lbs)
        #expect(ids == ["web|10.1.0.2|8080", "web|10.1.0.3|8080", "web|10.1.0.4|8080", "dns|2001:db8:1::2|53"])
        let backendSlots = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, UInt32(10 + $0)) })
        let t = try LoadBalancerCompiler.compile(lbs, vipSlots: ["web": 1, "dns": 2], backendSlots: backendSlots)

        #expect(t.vips.count == 2 && t.ring.count == 65537 + 251)
        let (webKey, webVIP) = t.vips[0]
        #expect(webKey.addr.0 == 0x0A00_000A && webKey.port == 80 && webKey.proto == 6 && webKey.family == 4)
        #expect(webVIP.slot == 1 && webVIP.ring_start == 0 && webVIP.ring_size == 65537)
        let (dnsKey, dnsVIP) = t.vips[1]
        #expect(dnsKey.addr.0 == 0x2001_0db8 && dnsKey.addr.3 == 0x53 && dnsKey.proto == 17 && dnsKey.family == 6)
        #expect(dnsVIP.ring_start == 65537 && dnsVIP.ring_size == 251)

        var counts: [UInt32: Int] = [:]
        for s in t.ring[0..<65537] { counts[s, default: 0] += 1 }
        #expect(counts[12] == nil, "the draining backend takes no new flows")
        #expect(abs(Double(counts[11]!) / 65537 - 0.75) < 0.0075 && abs(Double(counts[10]!) / 65537 - 0.25) < 0.0025, "\(counts)")
        #expect(t.ring[65537...].allSatisfy { $0 == 13 })
        #expect(t.backends[12]?.port == 8080 && t.backends[12]?.family == 4 && t.backends[13]?.addr.3 == 2)
    }

    @Test("health checks: defaults as HAProxy's where it has them, http with a path and statuses, a UDP service checked on a TCP port")
    func healthChecks() throws {
        let lbs = try ConfigDecoder.decode(withBalancers(#"""
            {"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [], "health_check": {"type": "tcp"}},
            {"name": "b", "vip": "10.0.0.1", "proto": "tcp", "port": 81, "backends": [], "health_check": {"type": "http", "path": "/healthz?full=1", "expect_status": [200, 204], "port": 9000, "interval_ms": 2000, "timeout_ms": 1000, "rise": 1, "fall": 5}},
            {"name": "c", "vip": "10.0.0.1", "proto": "udp", "port": 53, "backends": [], "health_check": {"type": "http", "port": 8053}}
            """#)).interfaces[0].loadBalancers
        let a = try #require(lbs[0].healthCheck), b = try #require(lbs[1].healthCheck), c = try #require(lbs[2].healthCheck)
        #expect(a == LoadBalancer.HealthCheck(kind: .tcp, intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3))
        #expect(b == LoadBalancer.HealthCheck(kind: .http, port: 9000, path: "/healthz?full=1", expectStatus: [200, 204],
                                              intervalMs: 2000, timeoutMs: 1000, rise: 1, fall: 5))
        #expect(c.port == 8053 && c.path == "/")
        #expect(b.passes(status: 204) && !b.passes(status: 301) && c.passes(status: 302) && !c.passes(status: 404) && !c.passes(status: 101))
    }

    @Test("a backend whose health checks failed leaves the Maglev table as a draining one does; the others' entries almost all stay")
    func downBackends() throws {
        let lbs = try ConfigDecoder.decode(withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "table_size": 251, "backends": [{"address": "10.1.0.2", "port": 80}, {"address": "10.1.0.3", "port": 80}, {"address": "10.1.0.4", "port": 80}], "health_check": {"type": "tcp"}}"#)).interfaces[0].loadBalancers
        let slots: [String: UInt32] = ["a|10.1.0.2|80": 1, "a|10.1.0.3|80": 2, "a|10.1.0.4|80": 3]
        let all = try LoadBalancerCompiler.compile(lbs, vipSlots: ["a": 1], backendSlots: slots)
        let without = try LoadBalancerCompiler.compile(lbs, vipSlots: ["a": 1], backendSlots: slots, down: [2])
        #expect(!without.ring.contains(2) && without.backends[2] != nil, "the slot keeps its backend, for its connections")
        let moved = zip(all.ring, without.ring).filter { $0 != 2 && $0 != $1 }.count
        #expect(moved < all.ring.count / 20, "the others' entries stay (Maglev moves few): \(moved) of \(all.ring.count) moved")
        let none = try LoadBalancerCompiler.compile(lbs, vipSlots: ["a": 1], backendSlots: slots, down: [1, 2, 3])
        #expect(none.ring.isEmpty && none.vips[0].value.ring_size == 0, "all down: new flows are no_backend drops")
        var unchecked = lbs
        unchecked[0].healthCheck = nil
        #expect(try LoadBalancerCompiler.compile(unchecked, vipSlots: ["a": 1], backendSlots: slots, down: [2]).ring == all.ring,
                "without health checks a recorded down is ignored")
    }

    @Test("a VIP whose backends all drain gets an empty table (new flows: no_backend)")
    func allDraining() throws {
        let lbs = try ConfigDecoder.decode(withBalancers(#"{"name": "a", "vip": "10.0.0.1", "proto": "tcp", "port": 80, "backends": [{"address": "10.1.0.2", "port": 80, "state": "draining"}]}"#)).interfaces[0].loadBalancers
        let t = try LoadBalancerCompiler.compile(lbs, vipSlots: ["a": 1], backendSlots: ["a|10.1.0.2|80": 1])
        #expect(t.ring.isEmpty && t.vips[0].value.ring_size == 0 && t.backends[1] != nil)
    }

    @Test("the reply port filter holds every backend port, over all interfaces")
    func replyPorts() throws {
        let config = try ConfigDecoder.decode(withBalancers(Self.web, more: #", {"name": "eth1", "load_balancers": [{"name": "b", "vip": "10.0.0.2", "proto": "udp", "port": 53, "backends": [{"address": "10.1.0.9", "port": 53}]}]}"#))
        #expect(LoadBalancerCompiler.replyPorts(config) == [8080, 53])
    }

    @Test("diff names every load-balancer change down to the backend")
    func diff() throws {
        let before = try ConfigDecoder.decode(withBalancers(Self.web + #", {"name": "old", "vip": "10.0.0.11", "proto": "udp", "port": 53, "backends": []}"#))
        let after = try ConfigDecoder.decode(withBalancers(#"{"name": "web", "vip": "10.0.0.10", "proto": "tcp", "port": 8080, "table_size": 131071, "backends": [{"address": "10.1.0.2", "port": 8080, "weight": 50}, {"address": "10.1.0.3", "port": 8080, "weight": 300, "state": "draining"}, {"address": "10.1.0.9", "port": 8080}]}, {"name": "new", "vip": "2001:db8::1", "proto": "tcp", "port": 443, "backends": [{"address": "2001:db8:1::2", "port": 443}]}"#))
        #expect(ConfigDiff.changes(from: before, to: after) == [
            "~ eth0: load balancer \"web\": VIP 10.0.0.10:80/tcp -> 10.0.0.10:8080/tcp",
            "~ eth0: load balancer \"web\": table_size 65537 -> 131071",
            "~ eth0: load balancer \"web\": backend 10.1.0.2:8080 weight 100 -> 50",
            "~ eth0: load balancer \"web\": backend 10.1.0.3:8080 active -> draining",
            "+ eth0: load balancer \"web\": backend 10.1.0.9:8080 weight 100 active",
            "- eth0: load balancer \"web\": backend 10.1.0.4:8080",
            "+ eth0: load balancer \"new\" [2001:db8::1]:443/tcp, 1 backend",
            "- eth0: load balancer \"old\"",
        ])
        #expect(ConfigDiff.changes(from: after, to: after).isEmpty)
    }

    @Test("counter and backend slots past the tables' size are refused")
    func capacity() throws {
        let lbs = try ConfigDecoder.decode(withBalancers(Self.web)).interfaces[0].loadBalancers
        let slots = Dictionary(uniqueKeysWithValues: LoadBalancerCompiler.backendIDs(lbs).map { ($0, UInt32(DP_LB_MAX_BACKENDS)) })
        #expect(throws: CapacityError.self) { try LoadBalancerCompiler.compile(lbs, vipSlots: ["web": 1], backendSlots: slots) }
    }
}
