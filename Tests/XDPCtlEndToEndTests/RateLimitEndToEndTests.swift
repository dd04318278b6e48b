import Foundation
import Glibc
import Testing
import XDPCtlCore

/// A real UDP sender floods a rate-limited port through the veth pair; the receiver gets
/// the configured rate (plus the burst), and stats --json accounts for every datagram.
@Suite("End to end: rate limits on real traffic", .serialized)
struct RateLimitEndToEndTests {
    /// Sends UDP datagrams to `port` as fast as one socket can for `seconds` from the
    /// client, while a receiver in the server namespace counts them. Returns (sent,
    /// received, seconds the sender ran).
    func flood(_ lab: Lab, port: Int, seconds: Double) throws -> (sent: Int, received: Int, elapsed: Double) {
        let receiver = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
            s.bind(("\(lab.serverV4)", \(port)))
            s.settimeout(\(seconds) + 3)
            n = 0
            try:
                while True:
                    s.recv(2048)
                    n += 1
                    s.settimeout(1.0)
            except socket.timeout:
                pass
            print(n)
            """
        let sender = """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("\(lab.clientV4)", 0))
            start = time.monotonic(); n = 0
            while time.monotonic() - start < \(seconds):
                s.sendto(b"x" * 64, ("\(lab.serverV4)", \(port)))
                n += 1
            print(n, time.monotonic() - start)
            """
        let out = Pipe()
        let rx = Process()
        rx.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        rx.arguments = ["30", "ip", "netns", "exec", lab.server, "python3", "-c", receiver]
        rx.standardOutput = out
        try rx.run()
        usleep(500_000)
        let tx = try sh(["ip", "netns", "exec", lab.client, "python3", "-c", sender], timeout: seconds + 10)
        rx.waitUntilExit()
        let received = Int(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        let fields = tx.out.split(separator: " ")
        return (Int(fields.first ?? "") ?? -1, received, Double(fields.last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1)
    }

    @Test("a per-rule limit of 400 packets/s holds under a UDP flood, within 5 %")
    func holdsTheRate() throws {
        let lab = try Lab()
        defer { lab.close() }
        let config = #"{"version": 1, "interfaces": [{"name": "\#(lab.serverIf)", "rate_limits": [{"name": "udp-7000", "proto": "udp", "dst_ports": [7000], "per": "rule", "packets_per_second": 400, "burst_packets": 40}]}]}"#
        let applied = try lab.apply(config)
        #expect(applied.status == 0, "\(applied.err)")

        let (sent, received, elapsed) = try flood(lab, port: 7000, seconds: 3)
        let expected = 40 + 400 * elapsed
        #expect(sent > 4 * Int(expected), "the sender offered at least 4× the rate (sent \(sent) in \(elapsed) s)")
        #expect(abs(Double(received) - expected) <= 0.05 * expected, "received \(received), expected \(expected) ± 5 %")

        let stats = try lab.stats()
        guard case .array(let limits)? = stats["rate_limits"], let limit = limits.first else {
            Issue.record("no rate_limits in stats: \(stats)")
            return
        }
        let passed = limit["passed"]?.int ?? -1, dropped = limit["dropped"]?.int ?? -1
        #expect(limit["name"] == .string("udp-7000") && passed == received, "passed \(passed), received \(received)")
        #expect(passed + dropped == sent, "passed \(passed) + dropped \(dropped) = sent \(sent)")
        #expect(stats["drop_reasons"]?["rate_limit"]?.int == dropped)

        // The same file again keeps the bucket; a new rate takes over at once.
        #expect(try lab.apply(config).out.contains("no changes"))
        let slower = config.replacingOccurrences(of: #""packets_per_second": 400"#, with: #""packets_per_second": 100"#)
        #expect(try lab.apply(slower).status == 0)
        let second = try flood(lab, port: 7000, seconds: 2)
        let expected2 = 40 + 100 * second.elapsed
        #expect(abs(Double(second.received) - expected2) <= 0.05 * expected2 + 2, "received \(second.received), expected \(expected2)")
    }

    @Test("buckets survive an apply that keeps the limit and changes something else")
    func bucketsSurviveApply() throws {
        let lab = try Lab()
        defer { lab.close() }
        func config(extraRule: Bool) -> String {
            let rules = extraRule ? #"{"name": "block-2222", "action": "drop", "proto": "tcp", "dst_ports": [2222]}"# : ""
            return #"{"version": 1, "interfaces": [{"name": "\#(lab.serverIf)", "firewall": {"default_action": "allow", "rules": [\#(rules)]}, "rate_limits": [{"name": "slow", "proto": "udp", "dst_ports": [7001], "per": "source", "packets_per_second": 1, "burst_packets": 3}]}]}"#
        }
        #expect(try lab.apply(config(extraRule: false)).status == 0)
        let first = try flood(lab, port: 7001, seconds: 0.3)
        #expect(first.received == 3, "a full bucket passes its burst: \(first)")
        let changed = try lab.apply(config(extraRule: true))
        #expect(changed.status == 0 && changed.out.contains("block-2222"), "\(changed.out)")
        // Refilled at 1 packet/s since the first flood; a reset bucket would pass 3 again.
        let second = try flood(lab, port: 7001, seconds: 0.3)
        #expect(second.received <= 2, "the bucket kept its state across the apply: \(second)")
        let status = try lab.xdpctl("status", "--json").out
        #expect(status.contains(#""limits": 1"#) && status.contains(#""source_buckets": 1"#), "one limit, one client: \(status)")
    }

    @Test("validate and apply refuse limits that do not fit, naming where; nothing changes")
    func tooManyEntries() throws {
        let lab = try Lab()
        defer { lab.close() }
        let ports = (1...70).map(String.init).joined(separator: ", ")
        let config = #"{"version": 1, "interfaces": [{"name": "\#(lab.serverIf)", "rate_limits": [{"name": "many", "proto": "udp", "dst_ports": [\#(ports)], "per": "rule", "packets_per_second": 5}]}]}"#
        let message = "interfaces[0].rate_limits: the rate limits expand to 70 match entries"
        let validated = try sh([xdpctlBinary, "validate", "-f", "-"], stdin: config) // validate takes no pin root
        #expect(validated.status == 1 && validated.err.contains(message), "\(validated.err)")
        let applied = try lab.apply(config)
        #expect(applied.status == 1 && applied.err.contains(message), "\(applied.err)")
        #expect(access(lab.pinRoot + "/dp_state", F_OK) != 0, "nothing was applied")
    }
}
