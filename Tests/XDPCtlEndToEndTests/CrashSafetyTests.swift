import Foundation
import Glibc
import Testing
import XDPCtlCore

/// Applies killed (SIGKILL, injected by strace at the N-th bpf() call) at many points:
/// afterwards one of the two configs runs whole, and status, stats and the next apply
/// agree with what the kernel does to packets (issue 24, item 3).
@Suite("End to end: applies killed at any point", .serialized)
struct CrashSafetyTests {
    /// A config on the lab's server end: rule `name` drops TCP to `port`, after `padding`
    /// rules that never match (enough of them load a bigger program).
    static func config(_ lab: Lab, _ name: String, port: Int, padding: Int = 0) -> String {
        let pad = (0..<padding).map { i in
            #"{"name": "pad\#(i)", "action": "drop", "src": ["10.99.\#(i / 250).\#(i % 250 + 1)/32"], "proto": "udp", "dst_ports": [9]}, "#
        }.joined()
        return lab.config(rules: pad + #"{"name": "\#(name)", "action": "drop", "proto": "tcp", "dst_ports": [\#(port)]}"#)
    }

    /// Whether a TCP connection to the server's `port` is answered (a dropped SYN times out
    /// in 0.25 s; on a veth the answer takes well under a millisecond).
    static func open(_ lab: Lab, _ port: Int) throws -> Bool {
        let r = try sh(["ip", "netns", "exec", lab.client, "socat", "-t", "0.3", "-", "TCP4:\(lab.serverV4):\(port),connect-timeout=0.25"],
                       timeout: 5, stdin: "ping\n")
        return r.status == 0 && r.out == "ping\n"
    }

    /// `xdpctl apply` of `config`, under strace; with `killAt`, SIGKILLed at that bpf() call.
    /// Returns how many bpf() calls it made (when traced to a file).
    @discardableResult
    static func tracedApply(_ lab: Lab, _ config: String, killAt: Int? = nil) throws -> Int {
        let trace = "/tmp/xdpctl-e2e-strace-\(lab.tag)"
        defer { unlink(trace) }
        let inject = killAt.map { ["-e", "inject=bpf:signal=KILL:when=\($0)"] } ?? []
        try sh(["strace", "-f", "-qq", "-o", trace, "-e", "trace=bpf"] + inject
               + [xdpctlBinary, "apply", "-f", "-", "--netns", lab.server, "--pin-root", lab.pinRoot], timeout: 60, stdin: config)
        return ((try? String(contentsOfFile: trace, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains("bpf(") }.count
    }

    /// The rule names `stats --json` counts for, and the firewall rule count `status --json` gives.
    static func recorded(_ lab: Lab) throws -> (names: Set<String>, rules: Int?) {
        let status = try lab.xdpctl("status", "--json")
        #expect(status.status == 0, "status after the kill: \(status.err)")
        var rules: Int?
        if case .object(let top) = try JSONParser.parse(status.out), case .array(let ifs)? = top.first(where: { $0.key == "interfaces" })?.value,
           let fw = ifs.first?["firewall"] { rules = fw["rules"]?.int }
        guard case .array(let list)? = try lab.stats()["rules"] else { return ([], rules) }
        return (Set(list.compactMap { if case .string(let s)? = $0["name"] { s } else { nil } }), rules)
    }

    /// Kills `apply(to)` over a running `from` at each of `points`; after each, checks that
    /// the recorded config (status, stats) is `from` or `to`, that the kernel does what it
    /// says, and that the next apply (a change that keeps the table's size) works.
    static func sweep(_ lab: Lab, from: (name: String, port: Int, text: String), to: (name: String, port: Int, text: String),
                      rules: (from: Int, to: Int), points: [Int]) throws -> (old: Int, new: Int) {
        var seen = (old: 0, new: 0)
        let next = config(lab, "next", port: 84)
        for n in points {
            #expect(try lab.apply(from.text).status == 0)
            try tracedApply(lab, to.text, killAt: n)
            let (names, count) = try recorded(lab)
            let isNew = names.contains(to.name)
            #expect(names.contains(from.name) != isNew, "kill at bpf() call \(n): stats names \(names.sorted().suffix(3))")
            #expect(count == (isNew ? rules.to : rules.from), "kill at bpf() call \(n): status counts \(String(describing: count)) rules")
            if isNew { seen.new += 1 } else { seen.old += 1 }
            let running = isNew ? to : from, other = isNew ? from : to
            #expect(try open(lab, running.port) == false, "kill at bpf() call \(n): \(running.name) recorded, yet port \(running.port) answers")
            #expect(try open(lab, other.port), "kill at bpf() call \(n): \(running.name) recorded, yet port \(other.port) is dropped")
            let after = try lab.apply(next)
            #expect(after.status == 0, "kill at bpf() call \(n): the next apply failed: \(after.err)")
            #expect(try open(lab, 84) == false && open(lab, running.port), "kill at bpf() call \(n): the next apply does not run")
        }
        return seen
    }

    @Test("killed at sampled bpf() calls of an apply that loads a bigger program, and at the calls of a patch: status, stats, packets and the next apply agree")
    func killedApplies() throws {
        let lab = try Lab()
        defer { lab.close() }
        // Echo servers that outlive Lab.spawn's two minutes: the sweeps take longer.
        let servers = try [81, 82, 84, 85].map { port in
            try spawnBounded(lab.server, ["socat", "TCP-LISTEN:\(port),fork,reuseaddr", "EXEC:cat"], seconds: 900)
        }
        defer { servers.forEach(stopBounded) }
        try lab.waitListening([81, 82, 84, 85])
        let a = (name: "a", port: 81, text: Self.config(lab, "a", port: 81))
        let big = (name: "b", port: 82, text: Self.config(lab, "b", port: 82, padding: 300))

        // The bigger file loads a program with a bigger table (the window where the new
        // program's pins stand in for the running one's).
        #expect(try lab.apply(a.text).status == 0)
        let small = try lab.xdpctl("status").out
        let calls = try Self.tracedApply(lab, big.text)
        let grown = try lab.xdpctl("status").out
        #expect(calls > 100 && small != grown, "\(calls) bpf() calls; \(small) -> \(grown)")
        // Every call of the last 30, where the flip, the attach and the record are, and
        // eight samples before.
        let tail = max(1, calls - 30)
        let points = Array(stride(from: 1, to: tail, by: max(1, tail / 8))) + Array(tail...calls)
        let full = try Self.sweep(lab, from: a, to: big, rules: (1, 301), points: points)
        #expect(full.old > 0 && full.new > 0, "kills landed both before and after the record: \(full)")

        // A one-rule change patches the running table: kill it at every call (every other
        // one when there are more than 30, and each of the last five).
        let patched = (name: "a3", port: 85, text: Self.config(lab, "a3", port: 85))
        #expect(try lab.apply(a.text).status == 0)
        let patchCalls = try Self.tracedApply(lab, patched.text)
        #expect(patchCalls > 5 && patchCalls < 100, "a patch made \(patchCalls) bpf() calls")
        let patchPoints = Array(stride(from: 1, to: patchCalls - 4, by: patchCalls > 30 ? 2 : 1)) + Array(patchCalls - 4...patchCalls)
        let patch = try Self.sweep(lab, from: a, to: patched, rules: (1, 1), points: patchPoints)
        #expect(patch.old > 0 && patch.new > 0, "patch kills landed both before and after the record: \(patch)")
        print("crash safety: an apply of \(calls) bpf() calls killed at \(points.count) of them (\(full.old) left the old config, \(full.new) the new); "
              + "a patch of \(patchCalls) calls killed at \(patchPoints.count) of them (\(patch.old) old, \(patch.new) new); status, stats, packets and the next apply agreed after every one")
    }
}
