import Testing
import XDPCtlCore
@testable import XDPCtlAgent

@Suite("The agent: per-rule series and addresses")
struct RuleSeriesTests {
    func interface(_ name: String, _ rules: [(String, UInt64)]) -> InterfaceStats {
        var s = InterfaceStats(name: name, ifindex: 2)
        s.rules = rules.map { .init(name: $0.0, packets: $0.1, bytes: $0.1 &* 100) }
        return s
    }

    func lines(_ mode: RuleSeries, _ interfaces: [InterfaceStats], generation: UInt64 = 1, labels: RuleLabels = RuleLabels()) -> [String] {
        String(decoding: mode.text(interfaces, generation: generation, labels: labels), as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test("all, none and top:N; the busiest N shown in file order, ties in file order")
    func modes() {
        let eth0 = interface("eth0", [("a", 5), ("b", 50), ("c", 0), ("d", 50), ("e", 7)])
        #expect(lines(.off, [eth0]).isEmpty)
        let all = lines(.all, [eth0])
        #expect(all.count == 4 + 10)
        #expect(all[0] == "# HELP xdpctl_rule_packets_total Packets a firewall rule decided.")
        #expect(all[1] == "# TYPE xdpctl_rule_packets_total counter")
        #expect(all[2] == #"xdpctl_rule_packets_total{interface="eth0",rule="a"} 5"#)
        #expect(all[8] == #"# TYPE xdpctl_rule_bytes_total counter"#)
        #expect(all[10] == #"xdpctl_rule_bytes_total{interface="eth0",rule="b"} 5000"#)
        let top = lines(.top(3), [eth0]).filter { $0.hasPrefix("xdpctl_rule_packets_total{") }
        #expect(top == [#"xdpctl_rule_packets_total{interface="eth0",rule="b"} 50"#,
                        #"xdpctl_rule_packets_total{interface="eth0",rule="d"} 50"#,
                        #"xdpctl_rule_packets_total{interface="eth0",rule="e"} 7"#])
        #expect(lines(.top(10), [eth0]) == all, "top:N over fewer rules is all of them")
        #expect(lines(.all, [interface("eth0", [])]).isEmpty, "no rules, no families")
    }

    @Test("label values are escaped as the text format wants; a new generation's names are used")
    func escapingAndGenerations() {
        let labels = RuleLabels()
        let odd = lines(.all, [interface("eth0", [(#"say "hi" \ bye"#, 1)])], labels: labels)
        #expect(odd[2] == #"xdpctl_rule_packets_total{interface="eth0",rule="say \"hi\" \\ bye"} 1"#)
        let renamed = lines(.all, [interface("eth0", [("other", 2)])], generation: 2, labels: labels)
        #expect(renamed[2] == #"xdpctl_rule_packets_total{interface="eth0",rule="other"} 2"#)
        #expect(lines(.all, [interface("eth0", [("x", UInt64.max)])])[2].hasSuffix(" 18446744073709551615"))
    }

    @Test("--metrics-rules and --metrics-address forms", arguments: [
        ("all", RuleSeries.all), ("none", .off), ("top:1", .top(1)), ("top:250", .top(250)),
        ("top:0", nil), ("top:", nil), ("top:x", nil), ("ALL", nil), ("", nil),
    ])
    func ruleModes(text: String, mode: RuleSeries?) {
        #expect(RuleSeries(text) == mode)
    }

    @Test func addresses() {
        #expect(MetricsAddress("127.0.0.1:9435").map { "\($0.host) \($0.port)" } == "127.0.0.1 9435")
        #expect(MetricsAddress("[::1]:9435")?.description == "[::1]:9435")
        #expect(MetricsAddress("localhost:80")?.host == "localhost")
        for bad in ["9435", ":9435", "::1:9435", "[::1]", "127.0.0.1:70000", "127.0.0.1:x", "[]:80"] {
            #expect(MetricsAddress(bad) == nil, "\(bad)")
        }
    }
}
