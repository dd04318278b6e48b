import Foundation
import Glibc
import Testing
import XDPCtlCore

@Suite("End to end: direct server return", .serialized)
struct DSREndToEndTests {
    @Test("forwarding dsr: backends that hold the VIP get the client's packets unchanged at L3 and answer from the VIP (IPv4 and IPv6); a backend port that differs from the VIP's is refused; apply warns when forwarding is off")
    func dsr() throws {
        let lab = try BalancerLab(backends: 3)
        defer { lab.close() }
        // Each backend holds both VIPs on lo and answers no ARP for them (IPVS-DR's set-up).
        for ns in lab.backends {
            for step in [["ip", "-n", ns, "addr", "add", "\(lab.vipV4)/32", "dev", "lo"],
                         ["ip", "-n", ns, "addr", "add", "\(lab.vipV6)/128", "dev", "lo"],
                         ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"]] {
                let r = try sh(step)
                #expect(r.status == 0, "\(step): \(r.err)")
            }
        }
        let all = [(index: 0, weight: 100, state: "active"), (1, 100, "active"), (2, 100, "active")]
        func dsr(_ lb: String) -> String { lb.replacingOccurrences(of: #""port": 8080, "backends""#, with: #""port": 8080, "forwarding": "dsr", "backends""#) }
        let config = lab.config(dsr(lab.balancer("web", port: 8080, all)) + ", " + dsr(lab.balancer("web6", v6: true, port: 8080, all)))
        #expect(config.contains(#""forwarding": "dsr""#))
        // With forwarding off where the VIP arrives, apply warns: nothing would be balanced.
        try sh(["ip", "netns", "exec", lab.lb, "sysctl", "-qw", "net.ipv4.conf.\(lab.lbClientIf).forwarding=0"])
        let warned = try lab.apply(config)
        #expect(warned.status == 0 && warned.err.contains("IP forwarding is off on \(lab.lbClientIf)")
            && warned.err.contains("sysctl -w net.ipv4.conf.\(lab.lbClientIf).forwarding=1") && !warned.err.contains("ipv6.conf"), "\(warned.err)")
        try sh(["ip", "netns", "exec", lab.lb, "sysctl", "-qw", "net.ipv4.conf.\(lab.lbClientIf).forwarding=1"])
        let applied = try lab.apply(config)
        #expect(applied.status == 0 && !applied.err.contains("forwarding"), "\(applied.err)")
        // XDP sends a DSR packet only to a backend whose MAC the LB host knows (the stack
        // cannot route the VIP to one): health checks keep the neighbours fresh; here a ping.
        for i in 0..<3 {
            _ = try sh(["ip", "netns", "exec", lab.lb, "ping", "-c", "1", "-W", "1", lab.backendV4(i)])
            _ = try sh(["ip", "netns", "exec", lab.lb, "ping", "-c", "1", "-W", "1", lab.backendV6(i)])
        }

        let v4 = try lab.curl(60, port: 8080), v6 = try lab.curl(60, v6: true, port: 8080)
        #expect(!v4.contains("") && Set(v4) == ["b1", "b2", "b3"], "\(v4)")
        #expect(!v6.contains("") && Set(v6) == ["b1", "b2", "b3"], "\(v6)")
        // The backends saw the VIP as the destination: their closed sockets are the VIP's.
        var local = ""
        for ns in lab.backends { local += try sh(["ip", "netns", "exec", ns, "ss", "-Htan", "state", "time-wait"]).out }
        #expect(local.contains(lab.vipV4) && local.contains(lab.vipV6), "\(local)")
        #expect(!(0..<3).contains { local.contains(lab.backendV4($0)) || local.contains(lab.backendV6($0)) }, "no socket of a backend's own address: \(local)")
        let stats = try lab.stats()
        #expect(lab.backendCounter(stats, "web", "connections").values.reduce(0, +) == 60)

        let refused = try lab.apply(lab.config(dsr(lab.balancer("web", port: 8080, all)).replacingOccurrences(of: #""port": 8080, "weight": 100, "state": "active"}]"#, with: #""port": 9090, "weight": 100, "state": "active"}]"#)))
        #expect(refused.status == 1 && refused.err.contains("direct server return cannot change ports"), "\(refused.err)")
    }
}
