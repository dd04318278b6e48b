import Foundation
import Glibc
import Synchronization
import Testing
import XDPCtlCore

private let fleetLabCounter = Atomic<Int>(0)

/// A fleet of load balancers behind a router (docs/fleet.md): a client namespace; a
/// router namespace running BIRD, with a bridge (its LAN) that joins it, `nodes` LB
/// nodes and `backends` DSR backends; each node runs BIRD and `xdpctl agent`
/// (announcing through BIRD) on one identical config. The router learns every VIP from
/// every node over BGP and spreads flows with ECMP on L4 hashes; backends hold the VIPs
/// on lo and answer the client through the router. Everything is removed on close().
final class FleetLab {
    let tag: String
    let net: Int
    let client: String, router: String
    let nodes: [String], backends: [String]
    let pinRoots: [String]
    /// Where the lab keeps the config file, BIRD's configs, sockets and logs.
    let run: String
    private(set) var agents: [RunningAgent?]
    private var birds: [Process?]
    private var routerBird: Process?
    private var background: [Process] = []
    /// The servers on port 81 (the "alt" VIP's), which a test stops.
    private var altServers: [Process] = []

    var vipV4: String { "10.\(net).100.1" }
    var altVIP: String { "10.\(net).100.2" }
    var vipV6: String { "fd00:\(net):100::1" }
    var routerLAN4: String { "10.\(net).1.1" }
    var routerLAN6: String { "fd00:\(net):1::1" }
    func node4(_ i: Int) -> String { "10.\(net).1.\(11 + i)" }
    func node6(_ i: Int) -> String { "fd00:\(net):1::\(11 + i)" }
    func backend4(_ i: Int) -> String { "10.\(net).1.\(21 + i)" }
    func backend6(_ i: Int) -> String { "fd00:\(net):1::\(21 + i)" }
    func include(_ i: Int) -> String { "\(run)/vips-\(i).conf" }
    func birdSocket(_ i: Int) -> String { "\(run)/node-\(i).ctl" }
    var configFile: String { "\(run)/xdpctl.json" }

    init(nodes nodeCount: Int = 3, backends backendCount: Int = 3) throws {
        #expect(getuid() == 0, "end-to-end tests need root: run them through scripts/test.sh")
        let n = fleetLabCounter.wrappingAdd(1, ordering: .relaxed).newValue
        net = 190 + n
        let tag = "\(getpid() % 100000)f\(n)"
        self.tag = tag
        client = "xfl-c\(tag)"
        router = "xfl-r\(tag)"
        nodes = (0..<nodeCount).map { "xfl-l\($0)\(tag)" }
        backends = (0..<backendCount).map { "xfl-b\($0)\(tag)" }
        pinRoots = (0..<nodeCount).map { "/sys/fs/bpf/xdpctl-e2e-fleet-\(tag)-\($0)" }
        run = "/tmp/xdpctl-e2e-fleet-\(tag)"
        agents = Array(repeating: nil, count: nodeCount)
        birds = Array(repeating: nil, count: nodeCount)
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)

        let r = router
        var steps: [[String]] = [
            ["ip", "netns", "add", client], ["ip", "netns", "add", router],
            ["ip", "link", "add", "uplink", "netns", client, "type", "veth", "peer", "name", "toclient", "netns", router],
            ["ip", "-n", r, "link", "add", "lan", "type", "bridge"],
            ["ip", "-n", client, "addr", "add", "10.\(net).0.2/24", "dev", "uplink"],
            ["ip", "-n", client, "addr", "add", "fd00:\(net)::2/64", "dev", "uplink", "nodad"],
            ["ip", "-n", r, "addr", "add", "10.\(net).0.1/24", "dev", "toclient"],
            ["ip", "-n", r, "addr", "add", "fd00:\(net)::1/64", "dev", "toclient", "nodad"],
            ["ip", "-n", r, "addr", "add", "\(routerLAN4)/24", "dev", "lan"],
            ["ip", "-n", r, "addr", "add", "\(routerLAN6)/64", "dev", "lan", "nodad"],
            ["ip", "-n", client, "link", "set", "lo", "up"], ["ip", "-n", client, "link", "set", "uplink", "up"],
            ["ip", "-n", r, "link", "set", "lo", "up"], ["ip", "-n", r, "link", "set", "toclient", "up"], ["ip", "-n", r, "link", "set", "lan", "up"],
            ["ip", "-n", client, "route", "add", "default", "via", "10.\(net).0.1"],
            ["ip", "-n", client, "-6", "route", "add", "default", "via", "fd00:\(net)::1"],
            // Flows spread over the nodes by their 5-tuple.
            ["ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
             "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1"],
        ] + BalancerLab.vethFixes(client, "uplink")
        // Each node and backend: one veth into the router's bridge, its port there with GRO
        // on (frames a node's XDP sends back out arrive there).
        for (i, ns) in (nodes + backends).enumerated() {
            let port = i < nodeCount ? "n\(i)" : "b\(i - nodeCount)"
            let (a4, a6) = i < nodeCount ? (node4(i), node6(i)) : (backend4(i - nodeCount), backend6(i - nodeCount))
            steps += [
                ["ip", "netns", "add", ns],
                ["ip", "link", "add", "lan", "netns", ns, "type", "veth", "peer", "name", port, "netns", r],
                ["ip", "-n", r, "link", "set", port, "master", "lan", "up"],
                ["ip", "-n", ns, "addr", "add", "\(a4)/24", "dev", "lan"], ["ip", "-n", ns, "addr", "add", "\(a6)/64", "dev", "lan", "nodad"],
                ["ip", "-n", ns, "link", "set", "lo", "up"], ["ip", "-n", ns, "link", "set", "lan", "up"],
                ["ip", "-n", ns, "route", "add", "default", "via", routerLAN4],
                ["ip", "-n", ns, "-6", "route", "add", "default", "via", routerLAN6],
            ] + BalancerLab.vethFixes(r, port) + BalancerLab.vethFixes(ns, "lan")
        }
        // Nodes forward (the XDP program's FIB lookups need it).
        for ns in nodes { steps.append(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]) }
        // DSR backends: the VIPs on lo, no ARP answers for them.
        for ns in backends {
            steps += [
                ["ip", "-n", ns, "addr", "add", "\(vipV4)/32", "dev", "lo"], ["ip", "-n", ns, "addr", "add", "\(altVIP)/32", "dev", "lo"],
                ["ip", "-n", ns, "addr", "add", "\(vipV6)/128", "dev", "lo"],
                ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"],
            ]
        }
        for step in steps {
            let r = try sh(step)
            if r.status != 0 { close(); throw Lab.LabError(message: "\(step.joined(separator: " ")): \(r.err)") }
        }
        do {
            // Backends: HTTP on 8080 (the VIP's port: DSR keeps ports), and a TCP listener on 81.
            for (i, ns) in backends.enumerated() {
                background.append(try spawnBounded(ns, ["python3", "-c", BalancerLab.backendServer, "b\(i + 1)"], seconds: 600))
                altServers.append(try spawnBounded(ns, ["socat", "TCP6-LISTEN:81,fork,reuseaddr", "EXEC:echo alt"], seconds: 600))
            }
            try write(routerBirdConfig, to: "\(run)/router.conf")
            routerBird = try spawnBounded(router, ["bird", "-f", "-c", "\(run)/router.conf", "-s", "\(run)/router.ctl", "-P", "\(run)/router.pid"], seconds: 600)
            try write(config, to: configFile)
            for i in nodes.indices { try startNode(i) }
        } catch {
            close()
            throw error
        }
    }

    /// The one config every node applies: three DSR VIPs over the same backends, each
    /// with TCP health checks (fast, for the lab).
    var config: String { config(v6: true) }

    /// The config without the IPv6 VIP.
    var withoutWeb6: String { config(v6: false) }

    private func config(v6 withV6: Bool) -> String {
        let check = #"{"type": "tcp", "interval_ms": 200, "timeout_ms": 150, "rise": 2, "fall": 2}"#
        func lb(_ name: String, _ vip: String, _ port: Int, v6: Bool) -> String {
            let list = backends.indices.map { #"{"address": "\#(v6 ? backend6($0) : backend4($0))", "port": \#(port)}"# }.joined(separator: ", ")
            return #"{"name": "\#(name)", "vip": "\#(vip)", "proto": "tcp", "port": \#(port), "forwarding": "dsr", "backends": [\#(list)], "health_check": \#(check)}"#
        }
        let lbs = [lb("web", vipV4, 8080, v6: false), lb("alt", altVIP, 81, v6: false)] + (withV6 ? [lb("web6", vipV6, 8080, v6: true)] : [])
        return #"{"version": 1, "interfaces": [{"name": "lan", "load_balancers": [\#(lbs.joined(separator: ", "))]}]}"#
    }

    /// An LB node's bird.conf (docs/fleet.md's, with the lab's addresses and fast timers).
    func nodeBirdConfig(_ i: Int) -> String {
        """
        router id \(node4(i));
        log "\(run)/node-\(i).log" all;
        protocol device {}
        include "\(include(i))";
        protocol bgp up4 {
        \tlocal \(node4(i)) as 65010;
        \tneighbor \(routerLAN4) as 65000;
        \thold time 3; keepalive time 1; connect retry time 1;
        \tipv4 { import none; export where proto = "xdpctl4"; next hop self; };
        }
        protocol bgp up6 {
        \tlocal \(node6(i)) as 65010;
        \tneighbor \(routerLAN6) as 65000;
        \thold time 3; keepalive time 1; connect retry time 1;
        \tipv6 { import none; export where proto = "xdpctl6"; next hop self; };
        }

        """
    }

    /// The router's bird.conf: a session with every node; routes from all of them merged
    /// into one ECMP route in the kernel.
    var routerBirdConfig: String {
        var text = """
            router id \(routerLAN4);
            log "\(run)/router.log" all;
            protocol device {}
            protocol kernel { ipv4 { import none; export all; }; merge paths on; }
            protocol kernel { ipv6 { import none; export all; }; merge paths on; }
            template bgp lb4 {
            \tlocal \(routerLAN4) as 65000;
            \thold time 3; keepalive time 1; connect retry time 1;
            \tipv4 { import all; export none; };
            }
            template bgp lb6 {
            \tlocal \(routerLAN6) as 65000;
            \thold time 3; keepalive time 1; connect retry time 1;
            \tipv6 { import all; export none; };
            }

            """
        for i in nodes.indices {
            text += "protocol bgp node\(i)v4 from lb4 { neighbor \(node4(i)) as 65010; }\n"
            text += "protocol bgp node\(i)v6 from lb6 { neighbor \(node6(i)) as 65010; }\n"
        }
        return text
    }

    /// Starts node i's BIRD and agent (the include file exists before BIRD reads it).
    func startNode(_ i: Int) throws {
        if !FileManager.default.fileExists(atPath: include(i)) { try write("", to: include(i)) }
        try write(nodeBirdConfig(i), to: "\(run)/node-\(i).conf")
        birds[i] = try spawnBounded(nodes[i], ["bird", "-f", "-c", "\(run)/node-\(i).conf", "-s", birdSocket(i), "-P", "\(run)/node-\(i).pid"], seconds: 600)
        for _ in 0..<50 where !FileManager.default.fileExists(atPath: birdSocket(i)) { usleep(100_000) }
        agents[i] = try RunningAgent(netns: nodes[i], pinRoot: pinRoots[i], tag: "\(tag)n\(i)", file: configFile, port: 9435,
                                     extra: ["--bird-include", include(i), "--bird-socket", birdSocket(i)])
    }

    /// Node i dies as a machine would: its link goes down first (no goodbye reaches the
    /// router), then its BIRD and agent are killed; its programs stay attached to a dead link.
    func crash(_ i: Int) throws {
        try sh(["ip", "-n", nodes[i], "link", "set", "lan", "down"])
        if let b = birds[i] { stopBounded(b) }
        if let a = agents[i] { kill(a.process.processIdentifier, SIGKILL); a.process.waitUntilExit() }
        birds[i] = nil
    }

    /// Stops the alt VIP's servers: its backends fail their checks.
    func stopAltServers() { altServers.forEach(stopBounded) }

    /// The next hops of the router's route to `address` (empty: no route).
    func nextHops(_ address: String) throws -> [String] {
        let r = try sh(["ip", "-n", router, address.contains(":") ? "-6" : "-4", "route", "show", address])
        let words = r.out.split(whereSeparator: \.isWhitespace)
        return words.indices.filter { words[$0] == "via" && $0 + 1 < words.count }.map { String(words[$0 + 1]) }.sorted()
    }

    /// The next hops, as a failure's message gives them.
    func route(_ address: String) -> String {
        (try? nextHops(address)).map { "route to \(address) via \($0)" } ?? "route to \(address) unknown"
    }

    /// Waits up to `seconds` for the router's route to `address` to have exactly the
    /// next hops `hops`; returns the time it took, nil when it did not happen.
    func waitForNextHops(_ address: String, _ hops: [String], seconds: Double = 20) throws -> Double? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .milliseconds(Int64(seconds * 1000)) {
            if try nextHops(address) == hops.sorted() {
                let t = ContinuousClock.now - start
                return Double(t.components.seconds) + Double(t.components.attoseconds) / 1e18
            }
            usleep(20_000)
        }
        return nil
    }

    /// xdpctl against node i.
    @discardableResult
    func xdpctl(_ i: Int, _ args: String...) throws -> (status: Int32, out: String, err: String) {
        try sh([xdpctlBinary] + args + ["--netns", nodes[i], "--pin-root", pinRoots[i]])
    }

    /// Packets node i's balancer `name` sent to backends, from `stats --json`.
    func packets(_ i: Int, _ name: String) throws -> Int {
        let r = try xdpctl(i, "stats", "--json", "--interface", "lan")
        guard r.status == 0, case .array(let ifs)? = try JSONParser.parse(r.out)["interfaces"], let first = ifs.first,
              case .array(let lbs)? = first["load_balancers"], let lb = lbs.first(where: { $0["name"] == .string(name) }),
              case .array(let bs)? = lb["backends"] else { throw Lab.LabError(message: "stats: \(r.out) \(r.err)") }
        return bs.compactMap { $0["packets"]?.int }.reduce(0, +)
    }

    /// What BIRD, the agents and the router logged, for a failure's message.
    var logs: String {
        let files = [(0..<nodes.count).map { "\(run)/node-\($0).log" }, ["\(run)/router.log"]].joined()
        return (files.map { "\($0):\n" + ((try? String(contentsOfFile: $0, encoding: .utf8))?.suffix(1500) ?? "") }
            + agents.compactMap { $0.map { "agent:\n" + $0.text.suffix(1500) } }).joined(separator: "\n")
    }

    private func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func close() {
        for a in agents.compactMap({ $0 }) where a.process.isRunning { _ = a.stop() }
        (birds.compactMap { $0 } + [routerBird].compactMap { $0 } + background + altServers).forEach(stopBounded)
        for root in pinRoots { _ = try? sh([xdpctlBinary, "down", "--pin-root", root]) }
        for ns in [client, router] + nodes + backends { _ = try? sh(["ip", "netns", "del", ns]) }
        try? FileManager.default.removeItem(atPath: run)
    }
}
