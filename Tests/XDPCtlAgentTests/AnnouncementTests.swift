import Testing
import XDPCtlCore
import XDPCtlKit
@testable import XDPCtlAgent

/// What the agent announces (ServedVIP.of) and the BIRD file it writes (Announcer.render).
@Suite("Announcements")
struct AnnouncementTests {
    static let config = try! ConfigDecoder.decode(#"""
        {"version": 1, "interfaces": [
          {"name": "a", "load_balancers": [
            {"name": "web", "vip": "10.9.0.1", "proto": "tcp", "port": 80, "backends": [
              {"address": "10.9.1.1", "port": 80}, {"address": "10.9.1.2", "port": 80}],
             "health_check": {"type": "tcp"}},
            {"name": "web-tls", "vip": "10.9.0.1", "proto": "tcp", "port": 443, "backends": [
              {"address": "10.9.1.1", "port": 443, "state": "draining"}]},
            {"name": "dns6", "vip": "fd09::53", "proto": "udp", "port": 53, "backends": [
              {"address": "fd09:1::1", "port": 53, "state": "draining"}]},
            {"name": "nocheck", "vip": "10.9.0.2", "proto": "tcp", "port": 80, "backends": [
              {"address": "10.9.1.3", "port": 80}]}]},
          {"name": "b", "load_balancers": [
            {"name": "other", "vip": "10.9.0.3", "proto": "tcp", "port": 80, "backends": [{"address": "10.9.1.4", "port": 80}]}]}]}
        """#)

    @Test("each VIP address once, healthy while one of its balancers has a backend that takes new flows; only attached interfaces")
    func served() {
        let all = ServedVIP.of(Self.config, attached: ["a"], down: [:])
        #expect(all == [ServedVIP(address: IPAddress("10.9.0.1")!, healthy: true), ServedVIP(address: IPAddress("fd09::53")!, healthy: false),
                        ServedVIP(address: IPAddress("10.9.0.2")!, healthy: true)])
        // Both of web's backends down: 10.9.0.1 has only a draining one left (web-tls).
        let down = ServedVIP.of(Self.config, attached: ["a", "b"], down: ["a": ["web|10.9.1.1|80", "web|10.9.1.2|80", "nocheck|10.9.1.3|80"]])
        #expect(down.map(\.healthy) == [false, false, true, true], "a recorded down counts only where a health check runs: \(down)")
        #expect(down.last?.address == IPAddress("10.9.0.3"))
    }

    @Test("the include file: one static protocol per family, a blackhole host route per VIP, valid when empty")
    func render() {
        let text = Announcer.render([IPAddress("10.9.0.1")!, IPAddress("fd09::53")!, IPAddress("10.9.0.2")!])
        #expect(text.contains("protocol static xdpctl4 {\n\tipv4;\n\troute 10.9.0.1/32 blackhole;\n\troute 10.9.0.2/32 blackhole;\n}\n"))
        #expect(text.contains("protocol static xdpctl6 {\n\tipv6;\n\troute fd09::53/128 blackhole;\n}\n"))
        let empty = Announcer.render([])
        #expect(empty.contains("protocol static xdpctl4 {\n\tipv4;\n}\n") && empty.contains("protocol static xdpctl6 {\n\tipv6;\n}\n"))
        #expect(!empty.contains("\troute "))
    }
}
