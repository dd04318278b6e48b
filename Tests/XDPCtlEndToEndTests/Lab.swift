import Foundation
import Synchronization
import Glibc
import Testing
import XDPCtlCore

/// Runs a command; returns exit status and output. Commands are bounded by `timeout`.
@discardableResult
func sh(_ args: [String], timeout: Double = 20, stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    p.arguments = ["-k", "2", String(timeout)] + args
    let out = Pipe(), err = Pipe(), input = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = input
    try p.run()
    if let stdin { input.fileHandleForWriting.write(stdin.data(using: .utf8)!) }
    try input.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Starts `args` in network namespace `ns`, killed after `seconds` at the latest. SIGKILL,
/// because children of the test process inherit its blocked signals: a SIGTERM stays
/// pending in them forever (72 receivers had outlived their runs by up to 90 minutes).
func spawnBounded(_ ns: String, _ args: [String], seconds: Int) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    p.arguments = ["-s", "KILL", String(seconds), "ip", "netns", "exec", ns] + args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    return p
}

/// Ends a process spawnBounded started, and what it runs: timeout leads a process group.
func stopBounded(_ p: Process) {
    guard p.isRunning else { return }
    kill(-p.processIdentifier, SIGKILL)
    p.waitUntilExit()
}

/// The xdpctl binary under test: $XDPCTL_BIN (set by scripts/test.sh), else the debug build.
let xdpctlBinary: String = {
    let env = ProcessInfo.processInfo.environment["XDPCTL_BIN"]
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return env ?? root.appendingPathComponent(".build/debug/xdpctl").path
}()

/// Labs made so far in this process; suites run in parallel, so it is atomic.
private let labCounter = Atomic<Int>(0)

/// Two network namespaces, client and server, joined by a veth pair, with IPv4 and IPv6
/// addresses from 10.x test prefixes; xdpctl works on the server end under its own pin
/// root. Everything is removed on close(), whatever the test did.
final class Lab {
    let tag: String
    let client: String, server: String
    let clientIf: String, serverIf: String
    let net: Int
    let pinRoot: String
    private var background: [Process] = []

    var serverV4: String { "10.\(net).0.1" }
    var clientV4: String { "10.\(net).0.2" }
    var blockedV4: String { "10.\(net).0.66" }
    var serverV6: String { "fd\(String(net, radix: 16))::1" }
    var clientV6: String { "fd\(String(net, radix: 16))::2" }
    var blockedV6: String { "fd\(String(net, radix: 16))::66" }

    init() throws {
        #expect(getuid() == 0, "end-to-end tests need root: run them through scripts/test.sh")
        #expect(FileManager.default.isExecutableFile(atPath: xdpctlBinary), "no xdpctl binary at \(xdpctlBinary): run `swift build` first")
        let n = labCounter.wrappingAdd(1, ordering: .relaxed).newValue
        net = 200 + n
        tag = "\(getpid() % 100000)x\(n)"
        client = "xe2e-c\(tag)"
        server = "xe2e-s\(tag)"
        clientIf = "xc\(tag)"
        serverIf = "xs\(tag)"
        pinRoot = "/sys/fs/bpf/xdpctl-e2e-\(tag)"
        let steps: [[String]] = [
            ["ip", "netns", "add", client], ["ip", "netns", "add", server],
            ["ip", "link", "add", clientIf, "netns", client, "type", "veth", "peer", "name", serverIf, "netns", server],
            ["ip", "-n", client, "addr", "add", "\(clientV4)/24", "dev", clientIf],
            ["ip", "-n", client, "addr", "add", "\(blockedV4)/24", "dev", clientIf],
            ["ip", "-n", server, "addr", "add", "\(serverV4)/24", "dev", serverIf],
            ["ip", "-n", client, "addr", "add", "\(clientV6)/64", "dev", clientIf, "nodad"],
            ["ip", "-n", client, "addr", "add", "\(blockedV6)/64", "dev", clientIf, "nodad"],
            ["ip", "-n", server, "addr", "add", "\(serverV6)/64", "dev", serverIf, "nodad"],
            ["ip", "-n", client, "link", "set", "lo", "up"], ["ip", "-n", server, "link", "set", "lo", "up"],
            ["ip", "-n", client, "link", "set", clientIf, "up"], ["ip", "-n", server, "link", "set", serverIf, "up"],
        ]
        for step in steps {
            let r = try sh(step)
            if r.status != 0 { close(); throw LabError(message: "\(step.joined(separator: " ")): \(r.err)") }
        }
    }

    struct LabError: Error, CustomStringConvertible { let message: String; var description: String { message } }

    func close() {
        background.forEach(stopBounded)
        _ = try? sh([xdpctlBinary, "down", "--pin-root", pinRoot])
        _ = try? sh(["ip", "netns", "del", client])
        _ = try? sh(["ip", "netns", "del", server])
    }

    /// xdpctl with this lab's pin root (and --netns for commands that take it).
    @discardableResult
    func xdpctl(_ args: String..., stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
        try sh([xdpctlBinary] + args + ["--pin-root", pinRoot], stdin: stdin)
    }

    /// Applies a config given as text through standard input.
    @discardableResult
    func apply(_ config: String) throws -> (status: Int32, out: String, err: String) {
        try xdpctl("apply", "-f", "-", "--netns", server, stdin: config)
    }

    /// A one-interface config for the server end.
    func config(mode: String = "auto", defaultAction: String = "allow", rules: String) -> String {
        #"{"version": 1, "interfaces": [{"name": "\#(serverIf)", "xdp_mode": "\#(mode)", "firewall": {"default_action": "\#(defaultAction)", "rules": [\#(rules)]}}]}"#
    }

    /// Starts a long-running command in a namespace; stopped by close().
    func spawn(_ ns: String, _ args: [String]) throws {
        background.append(try spawnBounded(ns, args, seconds: 120))
    }

    /// TCP echo servers on `ports`, IPv4 and IPv6.
    func startTCPEcho(_ ports: [Int]) throws {
        for port in ports { try spawn(server, ["socat", "TCP6-LISTEN:\(port),fork,reuseaddr", "EXEC:cat"]) }
        try waitListening(ports)
    }

    func waitListening(_ ports: [Int]) throws {
        for _ in 0..<50 {
            let r = try sh(["ip", "netns", "exec", server, "ss", "-Hltn"])
            if ports.allSatisfy({ r.out.contains(":\($0) ") }) { return }
            usleep(100_000)
        }
        throw LabError(message: "servers on \(ports) did not start")
    }

    /// True when a TCP connection from `source` (default: the client's unblocked address) reaches the echo server and echoes back.
    func tcpEcho(to address: String, port: Int, from source: String? = nil) throws -> Bool {
        let target = address.contains(":") ? "TCP6:[\(address)]:\(port)" : "TCP4:\(address):\(port)"
        let from = source ?? (address.contains(":") ? clientV6 : clientV4)
        let bind = from.contains(":") ? ",bind=[\(from)]" : ",bind=\(from)"
        let r = try sh(["ip", "netns", "exec", client, "socat", "-t", "1", "-", "\(target),connect-timeout=2\(bind)"], timeout: 5, stdin: "ping\n")
        return r.status == 0 && r.out == "ping\n"
    }

    /// Sends `count` UDP datagrams; returns how many the server received.
    /// How many of `count` datagrams (of `size` bytes, fragmented when over the MTU) sent
    /// from the client to `address`:`port` the server received whole.
    func udpDelivered(to address: String, port: Int, count: Int, size: Int? = nil) throws -> Int {
        let file = "/tmp/xdpctl-e2e-udp-\(tag)-\(port)"
        unlink(file)
        let listen = address.contains(":") ? "UDP6-RECV:\(port)" : "UDP4-RECV:\(port)"
        try spawn(server, ["socat", "-u", "-b", "65536", listen, "OPEN:\(file),creat,append"])
        usleep(300_000)
        let target = address.contains(":") ? "UDP6-SENDTO:[\(address)]:\(port),bind=[\(clientV6)]" : "UDP4-SENDTO:\(address):\(port),bind=\(clientV4)"
        for i in 0..<count {
            let body = "datagram \(i)"
            try sh(["ip", "netns", "exec", client, "socat", "-u", "-b", "65536", "-", target], timeout: 5,
                   stdin: body + String(repeating: "x", count: max(0, (size ?? 0) - body.count - 1)) + "\n")
        }
        usleep(300_000)
        defer { unlink(file) }
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").count
    }

    /// `xdpctl stats --json` of the server interface, parsed.
    func stats() throws -> [String: JSONValue] {
        let r = try xdpctl("stats", "--json")
        guard r.status == 0, case .object(let top) = try JSONParser.parse(r.out),
              case .array(let ifs)? = top.first(where: { $0.key == "interfaces" })?.value,
              case .object(let members)? = ifs.first else {
            throw LabError(message: "stats --json: \(r.status) \(r.out) \(r.err)")
        }
        return Dictionary(uniqueKeysWithValues: members.map { ($0.key, $0.value) })
    }
}

extension JSONValue {
    var int: Int? { integer(Int.self) }
}

/// Packets counted by the rule named `name` in a stats document.
func rulePackets(_ stats: [String: JSONValue], _ name: String) -> Int {
    guard case .array(let rules)? = stats["rules"] else { return -1 }
    return rules.first { $0["name"] == .string(name) }?["packets"]?.int ?? -1
}
