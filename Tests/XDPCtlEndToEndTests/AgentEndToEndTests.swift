import Foundation
import Glibc
import Testing
import XDPCtlCore

/// `xdpctl agent` as a process of its own, serving a lab's server end.
final class RunningAgent {
    let process = Process()
    let log: String
    let metricsPort: Int

    convenience init(_ lab: Lab, file: String, port: Int, extra: [String] = []) throws {
        try self.init(netns: lab.server, pinRoot: lab.pinRoot, tag: lab.tag, file: file, port: port, extra: extra)
    }

    init(netns: String, pinRoot: String, tag: String, file: String, port: Int, extra: [String] = []) throws {
        metricsPort = port
        log = "/tmp/xdpctl-e2e-agent-\(tag)-\(port).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: xdpctlBinary)
        process.arguments = ["agent", "-f", file, "--netns", netns, "--pin-root", pinRoot,
                             "--metrics-address", "127.0.0.1:\(port)"] + extra
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
    }

    var text: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Waits until the log holds `needle` (as often as `count`); false after `seconds`.
    func waitFor(_ needle: String, count: Int = 1, seconds: Double = 10) -> Bool {
        for _ in 0..<Int(seconds * 20) {
            if text.components(separatedBy: needle).count - 1 >= count { return true }
            usleep(50_000)
        }
        return false
    }

    func signal(_ s: Int32) { kill(process.processIdentifier, s) }

    /// Exit status after SIGTERM, or nil when it did not end within 5 s (then killed).
    func stop() -> Int32? {
        signal(SIGTERM)
        for _ in 0..<100 where process.isRunning { usleep(50_000) }
        guard !process.isRunning else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        unlink(log)
    }
}

/// Writes `text` to `path` as config managers do: a new file renamed onto the old.
func replaceFile(_ path: String, with text: String) throws {
    try text.write(toFile: path + ".new", atomically: false, encoding: .utf8)
    guard rename(path + ".new", path) == 0 else { throw Lab.LabError(message: "rename onto \(path): errno \(errno)") }
}

/// The samples `stats --json` of one interface says /metrics must hold: name, labels, value.
func expectedSamples(_ s: [String: JSONValue]) -> [(name: String, labels: [String: String], value: Double)] {
    guard case .string(let iface)? = s["name"] else { return [] }
    var out: [(name: String, labels: [String: String], value: Double)] = []
    func add(_ name: String, _ labels: [String: String], _ v: JSONValue?) {
        if let n = v?.int { out.append((name, labels.merging(["interface": iface]) { a, _ in a }, Double(n))) }
    }
    add("xdpctl_packets_total", ["hook": "xdp"], s["rx_packets"])
    add("xdpctl_bytes_total", ["hook": "xdp"], s["rx_bytes"])
    if case .object(let verdicts)? = s["verdicts"] { for m in verdicts { add("xdpctl_verdicts_total", ["hook": "xdp", "verdict": m.key], m.value) } }
    if case .object(let reasons)? = s["drop_reasons"] { for m in reasons { add("xdpctl_drops_total", ["hook": "xdp", "reason": m.key], m.value) } }
    if case .array(let rules)? = s["rules"] {
        for r in rules {
            guard case .string(let name)? = r["name"] else { continue }
            add("xdpctl_rule_packets_total", ["rule": name], r["packets"])
            add("xdpctl_rule_bytes_total", ["rule": name], r["bytes"])
        }
    }
    if case .string(let action)? = s["firewall_default"]?["action"] {
        add("xdpctl_firewall_default_packets_total", ["action": action], s["firewall_default"]?["packets"])
    }
    if case .array(let lbs)? = s["load_balancers"] {
        for lb in lbs {
            guard case .string(let vip)? = lb["name"], case .array(let backends)? = lb["backends"] else { continue }
            for (metric, key) in [("packets", "packets"), ("bytes", "bytes"), ("connections", "connections"), ("no_backend_drops", "no_backend")] {
                add("xdpctl_lb_\(metric)_total", ["vip": vip], lb[key])
            }
            for b in backends {
                guard case .string(let address)? = b["address"], let port = b["port"]?.int else { continue }
                let backend = address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
                for key in ["packets", "bytes", "connections"] { add("xdpctl_backend_\(key)_total", ["vip": vip, "backend": backend], b[key]) }
                if case .bool(let healthy)? = b["healthy"] { add("xdpctl_backend_healthy", ["vip": vip, "backend": backend], .int(healthy ? 1 : 0)) }
            }
        }
    }
    return out
}

/// Compares stats --json with a scrape taken just after it, up to three times (a stray
/// packet between the two moves a counter): what stats implies, and what differed in
/// the last round.
func matchStats(_ stats: () throws -> [String: JSONValue], _ scrape: () throws -> [Sample]) throws
    -> (expected: [(name: String, labels: [String: String], value: Double)], differ: [String]) {
    var result: (expected: [(name: String, labels: [String: String], value: Double)], differ: [String]) = ([], [])
    for _ in 0..<3 {
        let expected = expectedSamples(try stats())
        let samples = try scrape()
        let differ = expected.filter { value(samples, $0.name, $0.labels) != $0.value }
            .map { "\($0.name)\($0.labels): stats \($0.value), metrics \(value(samples, $0.name, $0.labels).map { "\($0)" } ?? "missing")" }
        result = (expected, differ)
        if differ.isEmpty { break }
    }
    return result
}

func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double? {
    samples.first { s in s.name == name && labels.allSatisfy { k, v in s.labels[k] == v } }?.value
}

/// One metric sample as the Prometheus Python client's parser reads it.
struct Sample: Equatable {
    var family: String
    var type: String
    var name: String
    var labels: [String: String]
    var value: Double
}

@Suite("End to end: the agent", .serialized)
struct AgentEndToEndTests {
    static let parser = #"""
        import json, sys
        from prometheus_client.parser import text_string_to_metric_families
        out = []
        for f in text_string_to_metric_families(sys.stdin.read()):
            if not f.documentation:
                sys.exit("no HELP for " + f.name)
            for s in f.samples:
                out.append({"family": f.name, "type": f.type, "name": s.name, "labels": s.labels, "value": s.value})
        print(json.dumps(out))
        """#

    /// GET /metrics in the lab's server namespace, parsed by the Prometheus client's parser.
    func scrape(_ lab: Lab, _ agent: RunningAgent) throws -> [Sample] { try Self.scrape(lab.server, agent) }

    static func scrape(_ netns: String, _ agent: RunningAgent) throws -> [Sample] {
        let r = try sh(["ip", "netns", "exec", netns, "curl", "-sf", "http://127.0.0.1:\(agent.metricsPort)/metrics"])
        guard r.status == 0 else { throw Lab.LabError(message: "GET /metrics: \(r.status) \(r.err)") }
        let parsed = try sh(["python3", "-c", Self.parser], stdin: r.out)
        guard parsed.status == 0, case .array(let items) = try JSONParser.parse(parsed.out) else {
            throw Lab.LabError(message: "the Prometheus parser refused /metrics: \(parsed.err)\n\(r.out.prefix(2000))")
        }
        return items.compactMap { item in
            guard case .string(let family)? = item["family"], case .string(let type)? = item["type"],
                  case .string(let name)? = item["name"], case .object(let labels)? = item["labels"],
                  case .number(let value)? = item["value"] else { return nil }
            let pairs = labels.compactMap { m -> (String, String)? in
                if case .string(let v) = m.value { return (m.key, v) } else { return nil }
            }
            return Sample(family: family, type: type, name: name, labels: Dictionary(uniqueKeysWithValues: pairs), value: Double(value) ?? .nan)
        }
    }


    func firewall(_ lab: Lab, blocking ports: [Int]) -> String {
        lab.config(rules: #"{"name": "blocked", "action": "drop", "proto": "tcp", "dst_ports": \#(ports)}, {"name": "web", "action": "allow", "proto": "tcp", "dst_ports": [8080]}"#)
    }

    func generation(_ lab: Lab) throws -> Int? {
        let r = try lab.xdpctl("status", "--json")
        guard case .object(let top) = try JSONParser.parse(r.out) else { return nil }
        return top.first { $0.key == "generation" }?.value.int
    }

    @Test("applies at start, again when the file changes and on SIGHUP; a bad file leaves the running config; metrics parse; SIGTERM leaves the data plane")
    func lifecycle() throws {
        let lab = try Lab()
        defer { lab.close() }
        let file = "/tmp/xdpctl-e2e-agent-\(lab.tag).json"
        defer { unlink(file) }
        try replaceFile(file, with: firewall(lab, blocking: [2222]))
        try lab.startTCPEcho([8080, 2222, 3333])

        let agent = try RunningAgent(lab, file: file, port: 9435)
        #expect(agent.waitFor("serving"), "the agent started: \(agent.text)")
        #expect(try lab.tcpEcho(to: lab.serverV4, port: 8080))
        #expect(try !lab.tcpEcho(to: lab.serverV6, port: 2222), "the first apply blocks 2222")
        #expect(try lab.tcpEcho(to: lab.serverV4, port: 3333))

        // A second agent on the same pin root is refused, and changes nothing.
        let second = try lab.xdpctl("agent", "-f", file, "--netns", lab.server, "--metrics-address", "none")
        #expect(second.status == 1 && second.err.contains("another xdpctl agent serves this pin root"), "\(second.err)")

        // The file changes (renamed onto): applied within a second, 3333 blocked too.
        let before = try generation(lab)
        try replaceFile(file, with: firewall(lab, blocking: [2222, 3333]))
        #expect(agent.waitFor("applied", count: 2), "\(agent.text)")
        #expect(try generation(lab) == before.map { $0 + 1 })
        #expect(try !lab.tcpEcho(to: lab.serverV4, port: 3333), "the changed file blocks 3333")

        // A bad file is logged with its path and error; the running config keeps serving.
        let running = try generation(lab)
        try replaceFile(file, with: #"{"version": 1, "interfaces": [{"name": "\#(lab.serverIf)", "firewall": {"default_action": "maybe"}}]}"#)
        #expect(agent.waitFor("apply failed"), "\(agent.text)")
        #expect(agent.text.contains(file) && agent.text.contains("default_action"), "the log names the file and the place: \(agent.text)")
        #expect(try generation(lab) == running)
        #expect(try !lab.tcpEcho(to: lab.serverV4, port: 3333), "still blocked after the bad file")
        #expect(try lab.tcpEcho(to: lab.serverV6, port: 8080))

        let samples = try scrape(lab, agent)
        #expect(value(samples, "xdpctl_applies_total", ["result": "failure"]) == 1)
        #expect(value(samples, "xdpctl_applies_total", ["result": "success"]) == 2)
        #expect(value(samples, "xdpctl_config_last_apply_successful") == 0)
        #expect(value(samples, "xdpctl_apply_duration_seconds_count") == 3)
        #expect(value(samples, "xdpctl_config_generation") == running.map { Double($0) })
        #expect(value(samples, "xdpctl_rule_packets_total", ["interface": lab.serverIf, "rule": "blocked"]) ?? 0 >= 2, "SYNs to 2222 and 3333")
        #expect(value(samples, "xdpctl_rule_packets_total", ["rule": "web"]) ?? 0 >= 4)
        #expect(value(samples, "xdpctl_drops_total", ["hook": "xdp", "reason": "firewall"])
                == value(samples, "xdpctl_rule_packets_total", ["rule": "blocked"]))
        #expect(value(samples, "xdpctl_interface_attached", ["interface": lab.serverIf]) == 1)
        #expect(value(samples, "xdpctl_map_memory_bytes") ?? 0 > 0)
        for s in samples where s.type == "counter" {
            #expect(s.name.hasSuffix("_total"), "counter \(s.name) ends in _total")
            #expect(s.name.hasPrefix("xdpctl_"))
        }
        // The figures are read at the scrape: every counter of stats --json is there, equal.
        let (expected, differ) = try matchStats(lab.stats, { try self.scrape(lab, agent) })
        #expect(expected.count >= 15 && differ.isEmpty, "\(expected.count) counters; differ: \(differ)")

        // SIGHUP applies the file again: fixed, it runs, 3333 opens.
        try replaceFile(file, with: firewall(lab, blocking: [2222]))
        #expect(agent.waitFor("applied", count: 3), "\(agent.text)")
        agent.signal(SIGHUP)
        #expect(agent.waitFor("SIGHUP"), "\(agent.text)")
        #expect(agent.waitFor("no changes"), "the same file again changes nothing: \(agent.text)")
        #expect(try lab.tcpEcho(to: lab.serverV4, port: 3333))

        // apply from another process takes the pin root's lock as the agent does.
        let other = try lab.apply(firewall(lab, blocking: [2222, 3333]))
        #expect(other.status == 0, "\(other.err)")

        // SIGTERM: exit 0, the data plane stays as it was.
        #expect(agent.stop() == 0, "\(agent.text)")
        #expect(agent.text.contains("the data plane keeps running"))
        #expect(try !lab.tcpEcho(to: lab.serverV4, port: 3333), "still attached and blocking after the agent left")
        #expect(try lab.tcpEcho(to: lab.serverV4, port: 8080))
        #expect(try lab.stats()["name"] == .string(lab.serverIf))
    }

    @Test("a first apply that fails, a taken address and a bad flag fail at start, changing nothing; JSON log lines parse")
    func startFailuresAndJSONLogs() throws {
        let lab = try Lab()
        defer { lab.close() }
        let file = "/tmp/xdpctl-e2e-agent-\(lab.tag).json"
        defer { unlink(file) }
        try replaceFile(file, with: #"{"version": 1, "interfaces": [{"name": "no-such-if0", "firewall": {"default_action": "allow"}}]}"#)
        let bad = try lab.xdpctl("agent", "-f", file, "--netns", lab.server, "--metrics-address", "none")
        #expect(bad.status == 1 && bad.err.contains(file) && bad.err.contains("no-such-if0"), "\(bad.err)")
        #expect(try lab.xdpctl("status").out.contains("nothing applied"))

        let flag = try lab.xdpctl("agent", "-f", file, "--metrics-address", "9435")
        #expect(flag.status == 64 && flag.err.contains("HOST:PORT"), "\(flag.err)")

        try replaceFile(file, with: firewall(lab, blocking: [2222]))
        try lab.spawn(lab.server, ["socat", "TCP4-LISTEN:9436,bind=127.0.0.1,fork,reuseaddr", "EXEC:cat"])
        try lab.waitListening([9436])
        let taken = try lab.xdpctl("agent", "-f", file, "--netns", lab.server, "--metrics-address", "127.0.0.1:9436")
        #expect(taken.status == 1 && taken.err.contains("cannot serve metrics on 127.0.0.1:9436"), "\(taken.err)")
        #expect(try lab.xdpctl("status").out.contains("nothing applied"), "an agent that cannot listen applies nothing")

        let agent = try RunningAgent(lab, file: file, port: 9437, extra: ["--log-format", "json"])
        #expect(agent.waitFor("\"serving\""), "\(agent.text)")
        #expect(agent.stop() == 0)
        let lines = agent.text.split(separator: "\n")
        #expect(lines.count >= 3, "\(agent.text)")
        for line in lines {
            let parsed = try? JSONParser.parse(String(line))
            #expect(parsed?["level"] != nil && parsed?["message"] != nil && parsed?["time"] != nil, "not a JSON log line: \(line)")
        }
    }
}
