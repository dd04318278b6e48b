import Foundation
import Glibc
import Testing
import XDPCtlCore

@Suite("End to end: the agent's health checks", .serialized)
struct AgentHealthEndToEndTests {
    /// An HTTP health endpoint on port 8081 of backend `i` (Python's server: 200 for /).
    func startHealthServer(_ lab: BalancerLab, _ i: Int) throws -> Process {
        let p = try spawnBounded(lab.backends[i], ["python3", "-m", "http.server", "8081", "--bind", "::", "--directory", "/tmp"], seconds: 300)
        for _ in 0..<50 {
            if try sh(["ip", "netns", "exec", lab.backends[i], "ss", "-Hltn"]).out.contains(":8081 ") { return p }
            usleep(100_000)
        }
        throw Lab.LabError(message: "the health server of backend \(i) did not start")
    }

    /// The `healthy` of each backend address of load balancer `name`, from stats --json.
    func healthy(_ lab: BalancerLab, _ name: String) throws -> [String: Bool] {
        guard case .array(let lbs)? = try lab.stats()["load_balancers"], let lb = lbs.first(where: { $0["name"] == .string(name) }),
              case .array(let bs)? = lb["backends"] else { return [:] }
        var out: [String: Bool] = [:]
        for b in bs { if case .string(let a)? = b["address"], case .bool(let h)? = b["healthy"] { out[a] = h } }
        return out
    }

    func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        for _ in 0..<Int(seconds * 10) {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    /// Seconds until `condition` holds, polled every 20 ms; nil after `limit`.
    func secondsUntil(_ limit: Double, _ condition: () throws -> Bool) rethrows -> Double? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .milliseconds(Int64(limit * 1000)) {
            if try condition() {
                let d = ContinuousClock.now - start
                return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            }
            usleep(20_000)
        }
        return nil
    }

    @Test("a backend that fails its checks takes no new flows and keeps its connections, and returns after rise passes; a wrong HTTP status fails; applies keep the state; /metrics equals stats (HTTP over IPv4, TCP over IPv6)")
    func downAndBack() throws {
        let lab = try BalancerLab(backends: 3)
        defer { lab.close() }
        var health = try (0..<3).map { try startHealthServer(lab, $0) }
        defer { health.forEach(stopBounded) }
        let all = [(index: 0, weight: 100, state: "active"), (1, 100, "active"), (2, 100, "active")]
        let timing = #""interval_ms": 200, "timeout_ms": 150, "rise": 2, "fall": 3"#
        func config(weight2: Int = 100) -> String {
            func with(_ lb: String, _ check: String) -> String { String(lb.dropLast()) + #", "health_check": {\#(check), \#(timing)}}"# }
            // web: HTTP on the service itself; web6: TCP on a health port; strict: a status the backends never give.
            let web = with(lab.balancer("web", [(0, 100, "active"), (1, 100, "active"), (2, weight2, "active")]), #""type": "http", "path": "/name""#)
            let web6 = with(lab.balancer("web6", v6: true, all), #""type": "tcp", "port": 8081"#)
            let strict = with(lab.balancer("strict", port: 81, all), #""type": "http", "port": 8081, "path": "/missing""#)
            return lab.config([web, web6, strict].joined(separator: ", "))
        }
        let file = "/tmp/xdpctl-e2e-health-\(lab.tag).json"
        defer { unlink(file) }
        try replaceFile(file, with: config())
        let agent = try RunningAgent(netns: lab.lb, pinRoot: lab.pinRoot, tag: lab.tag, file: file, port: 9445)
        #expect(agent.waitFor("serving"), "\(agent.text)")
        #expect(try waitUntil(5) { try lab.xdpctl("status").out.components(separatedBy: ": passed").count - 1 == 6 },
                "web's and web6's backends checked and passing: \((try? lab.xdpctl("status").out) ?? "")")
        #expect(Set(try lab.curl(30)) == ["b1", "b2", "b3"])

        // A wrong status: 404 for /missing, so strict's backends are all down.
        #expect(try waitUntil(5) { try healthy(lab, "strict").values.allSatisfy { !$0 } }, "\(agent.text)")
        #expect(try lab.xdpctl("status").out.contains("strict \(lab.backendV4(1)):8080 DOWN: failed: HTTP status 404"))
        #expect(try lab.curl(2, port: 81).allSatisfy { $0.isEmpty }, "strict has no backend: its new flows are dropped")

        // Established connections, on every backend, both families.
        let held = try HeldConnections(lab, count: 24)
        defer { held.close() }
        let before = try held.answers()
        #expect(Set(before) == ["b1", "b2", "b3"], "\(before)")

        // b1's server stops: web takes it out within interval x (fall + 1) = 0.8 s.
        stopBounded(lab.background[0])
        let out = try secondsUntil(5) { try healthy(lab, "web")[lab.backendV4(0)] == false }
        #expect(out.map { $0 <= 0.8 + 0.2 } == true, "out of rotation after \(out ?? -1) s (0.2 s for polling)")
        #expect(try healthy(lab, "web") == [lab.backendV4(0): false, lab.backendV4(1): true, lab.backendV4(2): true])
        #expect(try healthy(lab, "web6")[lab.backendV6(0)] == true, "web6 checks b1's health port, which still answers")
        let answers = try lab.curl(60)
        #expect(!answers.contains("b1") && !answers.contains(""), "new flows avoid b1: \(answers)")
        let after = try held.askAgain()
        #expect(zip(before, after).allSatisfy { $0 == "b1" || $0 == $1 }, "connections on b2 and b3 unaffected: \(after)")
        #expect(try lab.xdpctl("status").out.contains("web \(lab.backendV4(0)):8080 DOWN: failed: Connection refused"))

        // Its server back: in after rise passes.
        try lab.spawn(lab.backends[0], ["python3", "-c", BalancerLab.backendServer, "b1"])
        let back = try secondsUntil(5) { try healthy(lab, "web")[lab.backendV4(0)] == true }
        #expect(back != nil, "b1 back after \(back ?? -1) s")
        #expect(try lab.curl(60).contains("b1"))
        print("health timeline (interval 200 ms, fall 3, rise 2): out of rotation \(out ?? -1) s after the server stopped, back \(back ?? -1) s after it restarted")

        // b1's health port stops: web6 takes b1 out; its connections stay on b1.
        let held6 = try HeldConnections(lab, count: 24, v6: true)
        defer { held6.close() }
        let before6 = try held6.answers()
        #expect(Set(before6) == ["b1", "b2", "b3"], "\(before6)")
        stopBounded(health[0])
        #expect(try waitUntil(5) { try healthy(lab, "web6")[lab.backendV6(0)] == false })
        let answers6 = try lab.curl(30, v6: true)
        #expect(!answers6.contains("b1"), "\(answers6)")
        #expect(try held6.askAgain() == before6, "established connections stay, b1's too")
        #expect(try lab.xdpctl("status", "--json").out.contains(#""generation": 1"#),
                "a health change swaps the balancer's tables, not the config's generation")

        // An edit of the file (a weight) applies without a restart; b1 stays out of web6.
        var samples = try AgentEndToEndTests.scrape(lab.lb, agent)
        let generation = value(samples, "xdpctl_config_generation")
        try replaceFile(file, with: config(weight2: 200))
        #expect(agent.waitFor("applied", count: 2), "\(agent.text)")
        samples = try AgentEndToEndTests.scrape(lab.lb, agent)
        #expect(value(samples, "xdpctl_config_generation") == generation.map { $0 + 1 })
        #expect(try healthy(lab, "web6")[lab.backendV6(0)] == false)
        #expect(!(try lab.curl(30, v6: true)).contains("b1"), "still out of the table after the apply")

        // /metrics holds every counter of stats --json, health included.
        let (expected, differ) = try matchStats({ () throws -> [String: JSONValue] in
            guard case .object(let m) = try lab.stats() else { return [:] }
            return Dictionary(uniqueKeysWithValues: m.map { ($0.key, $0.value) })
        }, { try AgentEndToEndTests.scrape(lab.lb, agent) })
        #expect(expected.count >= 40 && differ.isEmpty, "\(expected.count) counters; differ: \(differ)")
        #expect(value(samples, "xdpctl_backend_healthy", ["vip": "web6", "backend": "[\(lab.backendV6(0))]:8080"]) == 0)

        // Back, then all down: new flows are no_backend drops; the state outlives the agent.
        health[0] = try startHealthServer(lab, 0)
        #expect(try waitUntil(5) { try healthy(lab, "web6").values.allSatisfy { $0 } })
        for p in health { stopBounded(p) }
        #expect(try waitUntil(5) { try healthy(lab, "web6").values.allSatisfy { !$0 } })
        #expect(try lab.curl(3, v6: true).allSatisfy { $0.isEmpty })
        #expect(agent.stop() == 0)
        #expect(try healthy(lab, "web6").values.allSatisfy { !$0 }, "the health state outlives the agent")
        #expect(agent.text.contains("backend down") && agent.text.contains("backend up"))
    }

    @Test("one agent keeps up with 1,000 backends checked every second")
    func thousandBackends() throws {
        let lab = try BalancerLab(backends: 1)
        defer { lab.close() }
        // One process answers TCP on 1,000 ports of the backend.
        let listener = """
            import asyncio
            async def main():
                async def accept(r, w): w.close()
                servers = [await asyncio.start_server(accept, None, p, reuse_address=True) for p in range(20000, 21000)]
                await asyncio.sleep(3600)
            asyncio.run(main())
            """
        try lab.spawn(lab.backends[0], ["python3", "-c", listener])
        #expect(try waitUntil(10) { try sh(["ip", "netns", "exec", lab.backends[0], "ss", "-Hltn"]).out.components(separatedBy: "\n").count > 1000 })
        let backends = (20000..<21000).map { #"{"address": "\#(lab.backendV4(0))", "port": \#($0)}"# }.joined(separator: ", ")
        let lb = #"{"name": "many", "vip": "\#(lab.vipV4)", "proto": "tcp", "port": 80, "backends": [\#(backends)], "health_check": {"type": "tcp", "interval_ms": 1000, "timeout_ms": 500}}"#
        let file = "/tmp/xdpctl-e2e-health-\(lab.tag).json"
        defer { unlink(file) }
        try replaceFile(file, with: lab.config(lb))
        let agent = try RunningAgent(netns: lab.lb, pinRoot: lab.pinRoot, tag: lab.tag, file: file, port: 9446)
        #expect(agent.waitFor("serving"), "\(agent.text)")
        let cpuStart = try cpuSeconds(agent.process.processIdentifier)
        sleep(6)
        let cpu = try cpuSeconds(agent.process.processIdentifier) - cpuStart
        let r = try lab.xdpctl("status", "--json")
        guard case .array(let interfaces)? = try JSONParser.parse(r.out)["interfaces"],
              case .array(let checks)? = interfaces.first?["health"] else {
            Issue.record("status --json: \(r.out.prefix(500))")
            return
        }
        let counts = checks.compactMap { $0["checks"]?.int }
        let ages = checks.compactMap { c -> Double? in if case .number(let n)? = c["last_check_seconds_ago"] { return Double(n) } else { return nil } }
        #expect(counts.count == 1000, "every backend checked")
        #expect(counts.min() ?? 0 >= 4, "at least 4 checks each in 6 s (the first within a second): min \(counts.min() ?? 0)")
        #expect(ages.max() ?? 99 < 1.5, "none more than an interval and a half behind: \(ages.max() ?? -1) s")
        let failing = checks.filter { $0["healthy"] != .bool(true) }
        let examples = failing.prefix(3).map { c -> String in
            if case .string(let b)? = c["backend"], case .string(let r)? = c["last_result"] { return "\(b) \(r)" }
            return "?"
        }
        #expect(failing.isEmpty, "\(failing.count) down, e.g. \(examples)")
        #expect(cpu < 4, "the agent's CPU time over 6 s (a debug build): \(cpu) s")
        print("1,000 backends at 1 s: min checks \(counts.min() ?? 0), max age \(ages.max() ?? -1) s, agent CPU \(cpu) s over 6 s")
        #expect(agent.stop() == 0)
    }

    /// User and system CPU time of a process, in seconds.
    func cpuSeconds(_ pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        return ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
