import Foundation
import Glibc
import Synchronization
import Testing
import XDPCtlCore

private let balancerLabCounter = Atomic<Int>(0)

/// A client namespace, a load-balancer namespace running xdpctl, and four backend
/// namespaces, each behind its own veth pair and /24 (and /64), each running a real HTTP
/// server (Python's, keep-alive) on port 8080 and a UDP responder on 5353 that answer
/// with the backend's name. The LB forwards between them; clients and backends route
/// through it. Everything is removed on close().
final class BalancerLab: RouterLab {
    let tag: String
    let net: Int
    let client: String, lb: String
    let clientIf: String, lbClientIf: String
    let backends: [String], backendIfs: [String], lbBackendIfs: [String]
    let pinRoot: String
    var background: [Process] = []

    var clientV4: String { "10.\(net).0.2" }
    var clientV6: String { "fd00:\(net)::2" }
    var vipV4: String { "10.\(net).100.1" }
    var vipV6: String { "fd00:\(net):100::1" }
    func backendV4(_ i: Int) -> String { "10.\(net).\(i + 1).2" }
    func backendV6(_ i: Int) -> String { "fd00:\(net):\(i + 1)::2" }

    /// `kernelDefaults`: the client's and backends' veth ends keep the kernel's default
    /// offloads (GRO off, TX checksum offload on), which XDP forwarding cannot use.
    init(backends count: Int = 4, kernelDefaults: Bool = false) throws {
        #expect(getuid() == 0, "end-to-end tests need root: run them through scripts/test.sh")
        let n = balancerLabCounter.wrappingAdd(1, ordering: .relaxed).newValue
        net = 150 + n
        let tag = "\(getpid() % 100000)y\(n)"
        self.tag = tag
        client = "xlb-c\(tag)"
        lb = "xlb-l\(tag)"
        clientIf = "yc\(tag)"
        lbClientIf = "yl\(tag)"
        backends = (0..<count).map { "xlb-b\($0)\(tag)" }
        backendIfs = (0..<count).map { "yx\($0)\(tag)" }
        lbBackendIfs = (0..<count).map { "yb\($0)\(tag)" }
        pinRoot = "/sys/fs/bpf/xdpctl-e2e-lb-\(tag)"
        var steps: [[String]] = [
            ["ip", "netns", "add", client], ["ip", "netns", "add", lb],
            ["ip", "link", "add", clientIf, "netns", client, "type", "veth", "peer", "name", lbClientIf, "netns", lb],
            ["ip", "-n", client, "addr", "add", "\(clientV4)/24", "dev", clientIf],
            ["ip", "-n", client, "addr", "add", "\(clientV6)/64", "dev", clientIf, "nodad"],
            ["ip", "-n", lb, "addr", "add", "10.\(net).0.1/24", "dev", lbClientIf],
            ["ip", "-n", lb, "addr", "add", "fd00:\(net)::1/64", "dev", lbClientIf, "nodad"],
            ["ip", "-n", client, "link", "set", "lo", "up"], ["ip", "-n", lb, "link", "set", "lo", "up"],
            ["ip", "-n", client, "link", "set", clientIf, "up"], ["ip", "-n", lb, "link", "set", lbClientIf, "up"],
            ["ip", "-n", client, "route", "add", "default", "via", "10.\(net).0.1"],
            ["ip", "-n", client, "-6", "route", "add", "default", "via", "fd00:\(net)::1"],
            ["ip", "netns", "exec", lb, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"],
        ] + (kernelDefaults ? [] : Self.vethFixes(client, clientIf))
        for i in 0..<count {
            let (ns, ifb, ifl) = (backends[i], backendIfs[i], lbBackendIfs[i])
            steps += [
                ["ip", "netns", "add", ns],
                ["ip", "link", "add", ifl, "netns", lb, "type", "veth", "peer", "name", ifb, "netns", ns],
                ["ip", "-n", lb, "addr", "add", "10.\(net).\(i + 1).1/24", "dev", ifl],
                ["ip", "-n", lb, "addr", "add", "fd00:\(net):\(i + 1)::1/64", "dev", ifl, "nodad"],
                ["ip", "-n", ns, "addr", "add", "\(backendV4(i))/24", "dev", ifb],
                ["ip", "-n", ns, "addr", "add", "\(backendV6(i))/64", "dev", ifb, "nodad"],
                ["ip", "-n", ns, "link", "set", "lo", "up"], ["ip", "-n", ns, "link", "set", ifb, "up"], ["ip", "-n", lb, "link", "set", ifl, "up"],
                ["ip", "-n", ns, "route", "add", "default", "via", "10.\(net).\(i + 1).1"],
                ["ip", "-n", ns, "-6", "route", "add", "default", "via", "fd00:\(net):\(i + 1)::1"],
            ] + (kernelDefaults ? [] : Self.vethFixes(ns, ifb))
        }
        for step in steps {
            let r = try sh(step)
            if r.status != 0 { close(); throw Lab.LabError(message: "\(step.joined(separator: " ")): \(r.err)") }
        }
        for i in 0..<count { try spawn(backends[i], ["python3", "-c", Self.backendServer, "b\(i + 1)"]) }
        for i in 0..<count { try waitListening(backends[i], tcp: 8080, udp: 5353) }
    }

    /// What a veth end that sends through an XDP forwarder needs: GRO on, so frames
    /// redirected into its peer are delivered (veth only receives them with NAPI on), and
    /// checksums computed in full when sending (a veth otherwise leaves them partial, for
    /// an offload that a redirected frame no longer carries).
    static func vethFixes(_ ns: String, _ ifname: String) -> [[String]] {
        [["ip", "netns", "exec", ns, "ethtool", "-K", ifname, "gro", "on", "tx", "off"]]
    }

    var router: String { lb }
    var namespaces: [String] { [client, lb] + backends }

    /// A config: the client-facing interface holds `balancers` (JSON text), every
    /// backend-facing interface is attached for the replies (in `backendMode`, or auto).
    func config(_ balancers: String, backendMode: String = "auto") -> String {
        let others = lbBackendIfs.map { #"{"name": "\#($0)", "xdp_mode": "\#(backendMode)"}"# }.joined(separator: ", ")
        return #"{"version": 1, "interfaces": [{"name": "\#(lbClientIf)", "load_balancers": [\#(balancers)]}, \#(others)]}"#
    }

    /// A load balancer over backends `which` (indices), JSON text.
    func balancer(_ name: String, v6: Bool = false, proto: String = "tcp", port: Int = 80, backendPort: Int = 8080,
                  _ which: [(index: Int, weight: Int, state: String)]) -> String {
        let list = which.map { #"{"address": "\#(v6 ? backendV6($0.index) : backendV4($0.index))", "port": \#(backendPort), "weight": \#($0.weight), "state": "\#($0.state)"}"# }
        return #"{"name": "\#(name)", "vip": "\#(v6 ? vipV6 : vipV4)", "proto": "\#(proto)", "port": \#(port), "backends": [\#(list.joined(separator: ", "))]}"#
    }

    /// `count` HTTP requests from the client with curl, each on a connection of its own,
    /// to the VIP (or `host`) and `port`; returns the backend names that answered, in
    /// order ("" for a failed request).
    func curl(_ count: Int, v6: Bool = false, host: String? = nil, port: Int = 80) throws -> [String] {
        let url = "http://\(host ?? (v6 ? "[\(vipV6)]" : vipV4)):\(port)/name"
        let args = ["ip", "netns", "exec", client, "curl", "-s", "-m", "3", "-H", "Connection: close", "-w", "=%{http_code};"] + Array(repeating: url, count: count)
        let r = try sh(args, timeout: 120)
        // Each transfer prints "NAME\n=200;" (just "=000;" when it failed).
        return r.out.split(separator: ";").prefix(count).map { transfer in
            let parts = transfer.split(separator: "=", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[1] == "200" ? parts[0].trimmingCharacters(in: .whitespacesAndNewlines) : ""
        }
    }

    /// `count` datagrams to the VIP's `port`, each from a connected socket of its own;
    /// returns for each "refused" (an ICMP port unreachable reached the socket),
    /// "timeout", or the answer.
    func connectedUDP(_ count: Int, port: Int, v6: Bool = false) throws -> [String] {
        let script = """
            import socket, sys, json
            vip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
            out = []
            for i in range(n):
                s = socket.socket(socket.AF_INET6 if ":" in vip else socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(2)
                s.connect((vip, port))
                s.send(b"hello")
                try:
                    out.append(s.recv(2048).decode())
                except ConnectionRefusedError:
                    out.append("refused")
                except socket.timeout:
                    out.append("timeout")
                s.close()
            print(json.dumps(out))
            """
        return try udpClient(script, port: port, count: count, v6: v6)
    }

    /// `count` UDP datagrams to the VIP, each from a socket of its own; returns the
    /// backend that answered each ("" when none did, "wrong-source" when the answer did
    /// not come from the VIP).
    func udp(_ count: Int, port: Int, v6: Bool = false) throws -> [String] {
        let script = """
            import socket, sys, json
            vip, port, n, fam = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
            out = []
            for i in range(n):
                s = socket.socket(fam, socket.SOCK_DGRAM)
                s.settimeout(2)
                s.sendto(b"hello", (vip, port))
                try:
                    data, addr = s.recvfrom(2048)
                    out.append(data.decode() if addr[0] == vip and addr[1] == port else "wrong-source")
                except socket.timeout:
                    out.append("")
                s.close()
            print(json.dumps(out))
            """
        return try udpClient(script, port: port, count: count, v6: v6)
    }

    /// Runs a UDP client `script` (arguments: VIP, port, count; prints a JSON list of
    /// strings) in the client namespace and returns its list.
    private func udpClient(_ script: String, port: Int, count: Int, v6: Bool) throws -> [String] {
        let r = try sh(["ip", "netns", "exec", client, "python3", "-c", script, v6 ? vipV6 : vipV4, String(port), String(count)], timeout: 120)
        guard case .array(let items) = try JSONParser.parse(r.out) else { throw Lab.LabError(message: "udp client: \(r.out) \(r.err)") }
        return items.map { if case .string(let s) = $0 { return s }; return "" }
    }

    /// `stats --json` of the client-facing interface.
    func stats() throws -> JSONValue {
        let r = try xdpctl("stats", "--json", "--interface", lbClientIf)
        guard r.status == 0, case .array(let ifs)? = try JSONParser.parse(r.out)["interfaces"], let first = ifs.first else {
            throw Lab.LabError(message: "stats: \(r.out) \(r.err)")
        }
        return first
    }

    /// Per backend address: the named counter of load balancer `name`.
    func backendCounter(_ stats: JSONValue, _ name: String, _ counter: String) -> [String: Int] {
        guard case .array(let lbs)? = stats["load_balancers"], let lb = lbs.first(where: { $0["name"] == .string(name) }),
              case .array(let bs)? = lb["backends"] else { return [:] }
        var out: [String: Int] = [:]
        for b in bs { if case .string(let a)? = b["address"] { out[a] = b[counter]?.int ?? -1 } }
        return out
    }

    static let backendServer = """
        import socket, sys, threading
        from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
        name = sys.argv[1]
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                body = (name + "\\n").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6
            daemon_threads = True
            request_queue_size = 1024
        def udp():
            u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            u.bind(("::", 5353))
            while True:
                data, addr = u.recvfrom(2048)
                u.sendto(name.encode(), addr)
        threading.Thread(target=udp, daemon=True).start()
        Server(("::", 8080), Handler).serve_forever()
        """
}

/// Long-lived flows from a client namespace, each asked again on demand: HTTP/1.1
/// connections to a VIP's port (BalancerLab's 80), or connected UDP sockets to it (53;
/// asked twice at the start, so every flow is established).
final class HeldConnections {
    let process = Process()
    private let input = Pipe(), output = Pipe()
    private var reader: FileHandle { output.fileHandleForReading }

    convenience init(_ lab: BalancerLab, count: Int, udp: Bool = false, v6: Bool = false) throws {
        try self.init(client: lab.client, vip: v6 ? lab.vipV6 : lab.vipV4, port: udp ? 53 : 80, count: count, udp: udp)
    }

    /// `timeout`: how long one answer may take (the script's socket timeout).
    init(client: String, vip: String, port: Int, count: Int, udp: Bool = false, timeout: Double = 3) throws {
        let script = """
            import http.client, json, socket, sys
            vip, port, n, udp, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "udp", float(sys.argv[5])
            family = socket.AF_INET6 if ":" in vip else socket.AF_INET
            if udp:
                conns = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(n)]
                for c in conns:
                    c.settimeout(timeout)
                    c.connect((vip, port))
            else:
                conns = [http.client.HTTPConnection(vip, port, timeout=timeout) for _ in range(n)]
            dead = set()
            def one(c):
                if udp:
                    c.send(b"which")
                    return c.recv(100).decode()
                c.request("GET", "/name")
                return c.getresponse().read().decode().strip()
            def ask(report=True):
                out = []
                for i, c in enumerate(conns):
                    if i in dead:
                        out.append("closed")
                        continue
                    try:
                        out.append(one(c))
                    except Exception as e:
                        if not udp:
                            dead.add(i)
                        out.append("error:" + type(e).__name__)
                if report:
                    print(json.dumps(out), flush=True)
            if udp:
                ask(report=False)
            ask()
            for line in sys.stdin:
                ask()
            """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["-s", "KILL", "240", "ip", "netns", "exec", client, "python3", "-c", script, vip, String(port), String(count), udp ? "udp" : "tcp", String(timeout)]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    /// The backend each connection reached in the latest round ("error:..." once it
    /// failed, "closed" after that).
    func answers() throws -> [String] {
        var line = Data()
        while true {
            let byte = reader.readData(ofLength: 1)
            if byte.isEmpty || byte == Data([0x0A]) { break }
            line += byte
        }
        guard case .array(let items) = try JSONParser.parse(Array(line)) else { throw Lab.LabError(message: "held connections: \(line)") }
        return items.map { if case .string(let s) = $0 { return s }; return "" }
    }

    /// Asks every connection again.
    func askAgain() throws -> [String] {
        startAsking()
        return try answers()
    }

    /// Starts the next round; answers() waits for it.
    func startAsking() {
        input.fileHandleForWriting.write("again\n".data(using: .utf8)!)
    }

    func close() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
