import Foundation
import Glibc
import Testing
import XDPCtlCore

@Suite("End to end: capture", .serialized)
struct CaptureEndToEndTests {
    /// Starts `xdpctl capture ARGS` against pin root `pinRoot`, its standard error to
    /// `log` and its standard output to `output` (or nowhere); returns it once the
    /// programs record (it says "capturing" then).
    static func startCapture(_ pinRoot: String, _ args: [String], log: String, output: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: xdpctlBinary)
        p.arguments = ["capture", "--pin-root", pinRoot] + args
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: log)
        if let output { _ = FileManager.default.createFile(atPath: output, contents: nil) }
        p.standardOutput = output.flatMap { FileHandle(forWritingAtPath: $0) } ?? FileHandle.nullDevice
        try p.run()
        for _ in 0..<100 where !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("capturing") { usleep(50_000) }
        return p
    }

    /// tshark's reading of a pcapng: each packet's comment.
    static func comments(_ file: String) throws -> [String] {
        let r = try sh(["tshark", "-r", file, "-T", "fields", "-e", "frame.comment"], timeout: 60)
        #expect(r.status == 0, "tshark: \(r.err)")
        return r.out.split(separator: "\n").map(String.init)
    }

    @Test("blocked TCP and rate-limited pings: the pcapng holds exactly the dropped packets, each with its reason and rule or limit, readable by tcpdump and tshark; a bad filter is refused")
    func drops() throws {
        let lab = try Lab()
        defer { lab.close() }
        let config = #"{"version": 1, "interfaces": [{"name": "\#(lab.serverIf)", "firewall": {"default_action": "allow", "rules": [{"name": "block-2222", "action": "drop", "proto": "tcp", "dst_ports": [2222]}]}, "rate_limits": [{"name": "pings", "proto": "icmp", "per": "rule", "packets_per_second": 2, "burst_packets": 2}]}]}"#
        #expect(try lab.apply(config).status == 0)
        let file = "/tmp/xdpctl-e2e-capture-\(lab.tag).pcapng", log = "/tmp/xdpctl-e2e-capture-\(lab.tag).log"
        defer { unlink(file); unlink(log) }
        let capture = try Self.startCapture(lab.pinRoot, ["--interface", lab.serverIf, "--verdict", "drop", "--duration", "4", "-w", file], log: log)
        #expect(try !lab.tcpEcho(to: lab.serverV4, port: 2222))
        _ = try sh(["ip", "netns", "exec", lab.client, "ping", "-c", "12", "-i", "0.02", "-W", "1", lab.serverV4], timeout: 10)
        capture.waitUntilExit()
        let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(capture.terminationStatus == 0, "\(said)")

        let stats = try lab.stats()
        guard case .array(let rules)? = stats["rules"], case .array(let limits)? = stats["rate_limits"] else {
            Issue.record("stats: \(stats)")
            return
        }
        let blocked = rules.first { $0["name"] == .string("block-2222") }?["packets"]?.int ?? -1
        let limited = limits.first?["dropped"]?.int ?? -1
        #expect(blocked >= 1 && limited >= 5, "blocked \(blocked), limited \(limited)")
        let comments = try Self.comments(file)
        print("capture: \(blocked) blocked, \(limited) over the limit; the pcapng holds \(comments.count)")
        #expect(comments.filter { $0 == "xdp drop reason firewall rule block-2222" }.count == blocked, "\(comments)")
        #expect(comments.filter { $0 == "xdp drop reason rate_limit limit pings" }.count == limited, "\(comments)")
        #expect(comments.count == blocked + limited, "nothing else: \(comments)")
        #expect(said.contains("\(blocked + limited) packets written") && said.contains("0 over the rate bound, 0 lost"), "\(said)")
        let tcpdump = try sh(["tcpdump", "-nr", file], timeout: 30)
        #expect(tcpdump.out.split(separator: "\n").count == blocked + limited && tcpdump.out.contains("\(lab.serverV4).2222"), "\(tcpdump.out) \(tcpdump.err)")

        // A filter expression picks among the drops; a bad one is a usage error.
        let pings = try Self.startCapture(lab.pinRoot, ["--interface", lab.serverIf, "--reason", "rate_limit", "-c", "3", "--duration", "20", "-w", file, "icmp"], log: log)
        _ = try sh(["ip", "netns", "exec", lab.client, "ping", "-c", "12", "-i", "0.02", "-W", "1", lab.serverV4], timeout: 10)
        pings.waitUntilExit()
        #expect(try Self.comments(file) == Array(repeating: "xdp drop reason rate_limit limit pings", count: 3))
        let bad = try lab.xdpctl("capture", "--interface", lab.serverIf, "tcp port", "-c", "1")
        #expect(bad.status == 64 && bad.err.contains("filter expression \"tcp port\""), "\(bad.err)")
        // explain names the same rule and limit, from the running config.
        let ssh = try lab.xdpctl("explain", "--interface", lab.serverIf, "--src", lab.clientV4, "--dst", lab.serverV4, "--sport", "40000", "--dport", "2222", "--json")
        #expect(ssh.status == 0 && ssh.out.contains(#""rule": "block-2222""#) && ssh.out.contains(#""action": "drop""#), "\(ssh.out) \(ssh.err)")
        let ping = try lab.xdpctl("explain", "--interface", lab.serverIf, "--src", lab.clientV4, "--dst", lab.serverV4, "--proto", "icmp")
        #expect(ping.status == 0 && ping.out.contains("the default action decides: allow") && ping.out.contains("\"pings\" charges it"), "\(ping.out) \(ping.err)")
        // A capture killed outright leaves the programs recording; the next apply ends it.
        func recording() throws -> Bool {
            let status = try lab.xdpctl("status", "--json")
            #expect(status.out.contains(#""capture_running": "#), "\(status.out) \(status.err)")
            return status.out.contains(#""capture_running": true"#)
        }
        #expect(try !recording())
        let killed = try Self.startCapture(lab.pinRoot, ["--interface", lab.serverIf], log: log)
        kill(killed.processIdentifier, SIGKILL)
        killed.waitUntilExit()
        #expect(try recording())
        #expect(try lab.apply(config.replacingOccurrences(of: #""packets_per_second": 2"#, with: #""packets_per_second": 3"#)).status == 0)
        #expect(try !recording(), "the apply turned the dead capture's recording off")
        let unknown = try lab.xdpctl("capture", "--interface", lab.serverIf, "--rule", "nope", "-c", "1")
        #expect(unknown.status == 1 && unknown.err.contains("--rule nope: no firewall rule, rate limit or load balancer of that name"), "\(unknown.err)")
    }

    @Test("explain names the backend real connections reach: curl from fixed source ports through the load balancer")
    func explainBackends() throws {
        let lab = try BalancerLab(backends: 3)
        defer { lab.close() }
        let all = [(index: 0, weight: 100, state: "active"), (1, 100, "active"), (2, 100, "active")]
        let config = lab.config(lab.balancer("web", all))
        #expect(try lab.apply(config).status == 0)
        let file = "/tmp/xdpctl-e2e-explain-\(lab.tag).json"
        try config.write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        var agreed = 0
        for sport in 41000..<41012 {
            let r = try sh(["ip", "netns", "exec", lab.client, "curl", "-s", "-m", "3", "--local-port", "\(sport)", "http://\(lab.vipV4):80/name"])
            let name = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let index = Int(name.dropFirst()).map({ $0 - 1 }), name.hasPrefix("b") else {
                Issue.record("curl from port \(sport): \(r.out) \(r.err)")
                continue
            }
            let running = try lab.xdpctl("explain", "--interface", lab.lbClientIf, "--netns", lab.lb, "--src", lab.clientV4, "--dst", lab.vipV4,
                                         "--sport", "\(sport)", "--dport", "80")
            let fromFile = try sh([xdpctlBinary, "explain", "-f", file, "--interface", lab.lbClientIf, "--src", lab.clientV4, "--dst", lab.vipV4,
                                   "--sport", "\(sport)", "--dport", "80", "--json"])
            let backend = "\(lab.backendV4(index)):8080"
            #expect(running.out.contains("\"web\": a new flow goes to \(backend)"), "\(running.out) \(running.err)")
            #expect(fromFile.out.contains(#""backend": "\#(backend)""#), "\(fromFile.out) \(fromFile.err)")
            if running.out.contains(backend) && fromFile.out.contains(backend) { agreed += 1 }
        }
        print("explain: \(agreed) of 12 connections went where explain said")
        #expect(agreed == 12)
    }

    /// Records what `ns` sends out of `ifname` into `file` while `body` runs (tcpdump in
    /// immediate mode, packet-buffered: every packet is in the file when it is killed).
    static func record(_ ns: String, _ ifname: String, _ file: String, _ body: () throws -> Void) throws {
        let log = file + ".log"
        defer { unlink(log) }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let tcpdump = Process()
        tcpdump.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        tcpdump.arguments = ["-s", "KILL", "60", "ip", "netns", "exec", ns, "tcpdump", "-i", ifname, "-Q", "out", "--immediate-mode", "-U", "-w", file]
        tcpdump.standardError = FileHandle(forWritingAtPath: log)
        try tcpdump.run()
        defer { stopBounded(tcpdump) }
        // "listening on": the capture runs.
        for _ in 0..<100 where !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("listening on") { usleep(50_000) }
        try body()
        usleep(300_000)
    }

    @Test("the tc hook: SNAT's packets are recorded as they leave the router, rewritten to its address, and the replies as XDP translated them back")
    func tcHook() throws {
        let lab = try NATLab()
        defer { lab.close() }
        try #require(try lab.apply(lab.config(NATEndToEndTests.rules(lab))).status == 0)
        let log = "/tmp/xdpctl-e2e-capture-tc-\(getpid()).log", out = "/tmp/xdpctl-e2e-capture-tc-\(getpid()).txt"
        defer { unlink(log); unlink(out) }
        let capture = try Self.startCapture(lab.pinRoot, ["--netns", lab.router, "--interface", lab.routerWanIf, "udp port 7000",
                                                          "-c", "6", "--duration", "20"], log: log, output: out)
        defer { stopBounded(capture) }
        let udp = try lab.python(lab.lan, NATLab.udpClient, [lab.serverV4, "7000", "3", lab.clientV4])
        #expect(udp.count == 3 && !udp.contains { $0.hasPrefix("FAIL") }, "\(udp)")
        capture.waitUntilExit()
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
        let sent = lines.filter { $0.contains(" tc pass ") && $0.contains(": \(lab.routerWanV4):") && $0.contains(" > \(lab.serverV4):7000 udp") }
        let back = lines.filter { $0.contains(" xdp ") && $0.contains(": \(lab.serverV4):7000 > \(lab.clientV4):") }
        #expect(sent.count == 3 && back.count == 3, "three datagrams out (tc, from the router's address) and three replies back (XDP, to the client): \(lines)")
        print("capture on the NAT side:\n\(lines.joined(separator: "\n"))")
    }

    @Test("replay: a capture tcpdump recorded in the lab gets the verdicts the live traffic got, with the rule that decided; through a new config loaded privately (-f) it gets that config's, and the running data plane counts nothing; other link types and truncated files are refused")
    func replay() throws {
        let lab = try Lab()
        defer { lab.close() }
        try lab.startTCPEcho([3333])
        let config = #"{"version": 1, "interfaces": [{"name": "\#(lab.serverIf)", "firewall": {"default_action": "allow", "rules": [{"name": "block-2222", "action": "drop", "proto": "tcp", "dst_ports": [2222]}]}}]}"#
        #expect(try lab.apply(config).status == 0)
        let file = "/tmp/xdpctl-e2e-replay-\(lab.tag).pcap"
        defer { unlink(file) }
        var (echoed, blockedLive) = (false, false)
        try Self.record(lab.client, lab.clientIf, file) {
            echoed = try lab.tcpEcho(to: lab.serverV4, port: 3333)
            blockedLive = try !lab.tcpEcho(to: lab.serverV4, port: 2222)
        }
        #expect(echoed && blockedLive)
        let stats = try lab.stats()
        guard case .array(let rules)? = stats["rules"] else { Issue.record("stats: \(stats)"); return }
        let blocked = rules.first { $0["name"] == .string("block-2222") }?["packets"]?.int ?? -1

        let r = try lab.xdpctl("replay", "-r", file, "--interface", lab.serverIf, "--json")
        #expect(r.status == 0, "\(r.err)")
        guard case .array(let packets)? = try JSONParser.parse(r.out)["packets"] else { Issue.record("replay: \(r.out) \(r.err)"); return }
        var drops = 0, toEcho = 0
        for p in packets {
            guard case .string(let into)? = p["in"] else { continue }
            if into.contains("\(lab.serverV4):2222 tcp") {
                #expect(p["verdict"] == .string("drop") && p["reason"] == .string("firewall") && p["decided_by"] == .string("rule block-2222"), "\(p)")
                drops += 1
            } else {
                #expect(p["verdict"] == .string("pass"), "everything else passed live: \(p)")
                if into.contains(":3333 tcp") { toEcho += 1; #expect(p["decided_by"] == .string("default action"), "\(p)") }
            }
        }
        print("replay: \(packets.count) packets, \(drops) dropped by block-2222 (live: \(blocked)), \(toEcho) to the echo server passed")
        #expect(drops == blocked && drops >= 1 && toEcho >= 4)

        // The same recording through a new config, loaded privately: its rules decide, on
        // an interface that does not exist here, and the running data plane sees nothing.
        let before = try lab.stats()["rules"]
        let next = "/tmp/xdpctl-e2e-replay-next-\(lab.tag).json"
        defer { unlink(next) }
        try #"{"version": 1, "interfaces": [{"name": "replay0", "firewall": {"default_action": "allow", "rules": [{"name": "block-3333", "action": "drop", "proto": "tcp", "dst_ports": [3333]}]}}]}"#
            .write(toFile: next, atomically: true, encoding: .utf8)
        let tried = try lab.xdpctl("replay", "-r", file, "-f", next, "--json")
        #expect(tried.status == 0, "\(tried.err)")
        guard case .array(let triedPackets)? = try JSONParser.parse(tried.out)["packets"] else { Issue.record("replay -f: \(tried.out) \(tried.err)"); return }
        #expect(triedPackets.count == packets.count)
        for p in triedPackets {
            guard case .string(let into)? = p["in"] else { continue }
            let blockedNow = into.contains("\(lab.serverV4):3333 tcp")
            #expect(p["verdict"] == .string(blockedNow ? "drop" : "pass"), "\(p)")
            if into.hasSuffix(" tcp") { #expect(p["decided_by"] == .string(blockedNow ? "rule block-3333" : "default action"), "\(p)") }
        }
        #expect(try lab.stats()["rules"] == before, "the running rules counted nothing")
        let parent = (lab.pinRoot as NSString).deletingLastPathComponent, base = (lab.pinRoot as NSString).lastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(base + "-private-") }.isEmpty, "the private load is gone")
        try #"{"version": 1, "interfaces": [{"name": "replay0"}, {"name": "replay1"}]}"#.write(toFile: next, atomically: true, encoding: .utf8)
        let which = try lab.xdpctl("replay", "-r", file, "-f", next)
        #expect(which.status == 1 && which.err.contains("name one with --interface"), "\(which.err)")

        // Not Ethernet: tcpdump -i any writes Linux cooked captures.
        let cooked = "/tmp/xdpctl-e2e-replay-any-\(lab.tag).pcap"
        defer { unlink(cooked) }
        let any = try spawnBounded(lab.client, ["tcpdump", "-i", "any", "-U", "-w", cooked], seconds: 30)
        usleep(500_000)
        _ = try lab.tcpEcho(to: lab.serverV4, port: 3333)
        usleep(300_000)
        stopBounded(any)
        let refused = try lab.xdpctl("replay", "-r", cooked, "--interface", lab.serverIf)
        #expect(refused.status == 1 && refused.err.contains("is not Ethernet"), "\(refused.err)")
        // Truncated in the middle of a packet.
        let size = (try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        let cut = "/tmp/xdpctl-e2e-replay-cut-\(lab.tag).pcap"
        defer { unlink(cut) }
        try Data(try Data(contentsOf: URL(fileURLWithPath: file)).prefix(size - 10)).write(to: URL(fileURLWithPath: cut))
        let truncated = try lab.xdpctl("replay", "-r", cut, "--interface", lab.serverIf)
        #expect(truncated.status == 1 && truncated.err.contains("packet \(packets.count)") && truncated.err.contains("truncated"), "\(truncated.err)")
    }

    @Test("replay through a load balancer, running or loaded privately from its file, writes the packets with the backend's address, and names the backend")
    func replayBalancer() throws {
        let lab = try BalancerLab(backends: 3)
        defer { lab.close() }
        let all = [(index: 0, weight: 100, state: "active"), (1, 100, "active"), (2, 100, "active")]
        #expect(try lab.apply(lab.config(lab.balancer("web", all))).status == 0)
        let file = "/tmp/xdpctl-e2e-replay-lb-\(lab.tag).pcap", out = "/tmp/xdpctl-e2e-replay-lb-out-\(lab.tag).pcap"
        defer { unlink(file); unlink(out) }
        var answers: [String] = []
        try Self.record(lab.client, lab.clientIf, file) { answers = try lab.curl(3) }
        let recorded = try sh(["tcpdump", "-nr", file], timeout: 30)
        #expect(!answers.contains("") && recorded.out.contains("\(lab.vipV4).80:"), "\(answers) \(recorded.out) \(recorded.err)")
        let r = try lab.xdpctl("replay", "-r", file, "--interface", lab.lbClientIf, "--netns", lab.lb, "-w", out)
        #expect(r.status == 0 && r.out.contains("redirect backend web 10.\(lab.net)."), "\(r.out) \(r.err)")
        print("replay through the balancer:\n\(r.out)")
        let written = try sh(["tcpdump", "-nr", out, "tcp"], timeout: 30)
        let backends = (0..<3).map { "\(lab.backendV4($0)).8080" }
        #expect(backends.contains { written.out.contains($0) } && !written.out.contains("\(lab.vipV4).80:"), "\(written.out)")

        // The same through the file, loaded privately in the balancer's namespace: a new
        // connection table, the same Maglev table, so the same backends.
        let file2 = "/tmp/xdpctl-e2e-replay-lb-\(lab.tag).json"
        defer { unlink(file2) }
        try lab.config(lab.balancer("web", all)).write(toFile: file2, atomically: true, encoding: .utf8)
        let tried = try lab.xdpctl("replay", "-r", file, "-f", file2, "--interface", lab.lbClientIf, "--netns", lab.lb)
        let chosen = { (out: String) in out.split(separator: "\n").filter { $0.contains("redirect backend") }.map { $0.split(separator: " ").dropFirst().joined(separator: " ") } }
        #expect(tried.status == 0 && !chosen(tried.out).isEmpty && chosen(tried.out) == chosen(r.out), "\(tried.out) \(tried.err)")
    }
}
