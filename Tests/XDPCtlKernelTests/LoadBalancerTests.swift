import CXDPCtlABI
import Foundation
import Glibc
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore
@testable import XDPCtlKit

/// A network namespace with a route and neighbour entries toward the test backends and
/// clients, so the program's FIB lookup resolves as on a real load balancer. PROG_TEST_RUN
/// runs in the caller's namespace: `run` does its work on a thread that entered this one.
final class FIBNamespace {
    let name = "xktlb-\(getpid())-\(UInt32.random(in: 0..<1_000_000))"
    static let neighbourMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x0B]
    /// One backend (per family) sits behind another neighbour, so a next hop remembered
    /// for one destination cannot pass for another's.
    static let otherMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x0C]
    static let otherNeighbours = ["10.51.1.3", "fd51::3"]
    private(set) var egressMAC: [UInt8] = []

    init() throws {
        func text(_ mac: [UInt8]) -> String { mac.map { String(format: "%02x", $0) }.joined(separator: ":") }
        var steps: [[String]] = [
            ["ip", "netns", "add", name],
            ["ip", "-n", name, "link", "set", "lo", "up"],
            ["ip", "-n", name, "link", "add", "xlba", "type", "veth", "peer", "name", "xlbb"],
            ["ip", "-n", name, "link", "set", "xlba", "up"], ["ip", "-n", name, "link", "set", "xlbb", "up"],
            ["ip", "-n", name, "addr", "add", "10.50.0.1/16", "dev", "xlba"], ["ip", "-n", name, "addr", "add", "10.51.0.1/16", "dev", "xlba"],
            ["ip", "-n", name, "addr", "add", "fd50::1/64", "dev", "xlba", "nodad"], ["ip", "-n", name, "addr", "add", "fd51::1/64", "dev", "xlba", "nodad"],
            ["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"],
        ]
        for a in ["10.50.0.2", "10.51.1.2", "10.51.1.3", "10.51.1.4", "fd50::2", "fd51::2", "fd51::3"] {
            let mac = text(Self.otherNeighbours.contains(a) ? Self.otherMAC : Self.neighbourMAC)
            steps.append(["ip", "-n", name, "neigh", "add", a, "lladdr", mac, "dev", "xlba", "nud", "permanent"])
        }
        for step in steps {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            p.arguments = Array(step.dropFirst())
            if step[0] != "ip" { p.executableURL = URL(fileURLWithPath: "/usr/bin/env"); p.arguments = step }
            try p.run()
            p.waitUntilExit()
            if p.terminationStatus != 0 { close(); throw BPFError(.pin("setting up \(name): \(step.joined(separator: " "))"), errno: EIO) }
        }
        // sysfs stays the host's after setns(): ask ip for the egress MAC.
        let show = Process(), out = Pipe()
        show.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        show.arguments = ["-n", name, "-o", "link", "show", "xlba"]
        show.standardOutput = out
        try show.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        show.waitUntilExit()
        let words = text.split(separator: " ")
        if let i = words.firstIndex(of: "link/ether"), i + 1 < words.count {
            egressMAC = words[i + 1].split(separator: ":").compactMap { UInt8($0, radix: 16) }
        }
        if egressMAC.count != 6 { close(); throw BPFError(.pin("no MAC for xlba in \(name): \(text)"), errno: EIO) }
    }

    func close() {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["netns", "del", name]
        try? p.run()
        p.waitUntilExit()
    }

    /// Runs `body` on a new thread inside the namespace and waits for it.
    func run(_ body: @escaping () throws -> Void) throws {
        /// The work and its outcome, handed to the thread and back (the caller waits).
        final class Job: @unchecked Sendable {
            let body: () throws -> Void
            var error: Error?
            init(_ body: @escaping () throws -> Void) { self.body = body }
        }
        let outcome = Job(body)
        let done = DispatchSemaphore(value: 0)
        let netns = name
        let thread = Thread {
            do {
                try Netns.enter(netns)
                try outcome.body()
            } catch { outcome.error = error }
            done.signal()
        }
        thread.start()
        done.wait()
        if let error = outcome.error { throw error }
    }

}

extension LoadedProgram {
    /// Installs a generation with load balancers (and the last one's other tables).
    @discardableResult
    func installBalancers(_ lbs: [LoadBalancer]) throws -> [String: UInt32] {
        let (slots, tables) = try Dataplane.installBalancers(lbs, into: object)
        try flip(tables)
        return slots
    }

    func lbCounters(_ map: String, _ slot: UInt32) throws -> dp_lb_stats {
        try object.map(map).lookupPerCPU(slot, as: dp_lb_stats.self).reduce(into: dp_lb_stats()) { t, c in
            t.packets += c.packets
            t.bytes += c.bytes
            t.connections += c.connections
            t.no_backend += c.no_backend
        }
    }

    /// The client's entry of a load-balanced connection, in dp_ct (or, `new`, dp_ct_new).
    func connection(new: Bool = false, client: String, port: UInt16, vip: String, vipPort: UInt16, proto: UInt8) throws -> dp_ct_entry? {
        try object.map(new ? DP_MAP_CT_NEW : DP_MAP_CT).lookup(flowKey(client: client, port: port, vip: vip, vipPort: vipPort, proto: proto),
                                                              as: dp_ct_entry.self)
    }

    /// Puts an established TCP connection to the VIP 10.50.100.1:80 (load balancer "web",
    /// VIP slot 1) in the connection table, on backend slot `backend` (web's backends in
    /// order from slot 1): the client's entry and the reply's, as the data path makes them
    /// on the test run's interface (the namespace's loopback).
    @discardableResult
    func establish(client: String, port: UInt16, backend: UInt32) throws -> dp_ct_key {
        let key = flowKey(client: client, port: port, vip: "10.50.100.1", vipPort: 80, proto: 6)
        let to = flowKey(client: client, port: port, vip: "\(LoadBalancerTests.web.backends[Int(backend) - 1].address)", vipPort: 8080, proto: 6)
        var e = dp_ct_entry()
        (e.state, e.kind, e.rule, e.ifindex, e.epoch, e.vip) = (UInt8(DP_CT_ESTABLISHED.rawValue), UInt8(DP_CT_LB.rawValue), backend, 1, 1, 1)
        (e.created_ns, e.seen_ns) = (Dataplane.monotonicNow(), Dataplane.monotonicNow())
        e.to = to
        try object.map(DP_MAP_CT).update(key, e)
        (e.to, e.reply, e.rewrites_src) = (key.reversed, 1, 1)
        try object.map(DP_MAP_CT).update(to.reversed, e)
        return key
    }
}

/// A connection-table key: the client's packet to the VIP as it arrives.
func flowKey(client: String, port: UInt16, vip: String, vipPort: UInt16, proto: UInt8) -> dp_ct_key {
    var key = dp_ct_key()
    let c = IPAddress(client)!
    key.src = c.tuple
    key.dst = IPAddress(vip)!.tuple
    (key.sport, key.dport, key.proto, key.family) = (port, vipPort, proto, UInt8(c.family.rawValue))
    return key
}

@Suite("Kernel: load balancing fixtures (PROG_TEST_RUN)", .serialized)
struct LoadBalancerTests {
    static let web = LoadBalancer(name: "web", vip: IPAddress("10.50.100.1")!, proto: .tcp, port: 80, backends: [
        .init(address: IPAddress("10.51.1.2")!, port: 8080, weight: 100),
        .init(address: IPAddress("10.51.1.3")!, port: 8080, weight: 100),
        .init(address: IPAddress("10.51.1.4")!, port: 8080, weight: 100, state: .draining),
    ])
    static let web6 = LoadBalancer(name: "web6", vip: IPAddress("fd50:100::1")!, proto: .tcp, port: 80, backends: [
        .init(address: IPAddress("fd51::2")!, port: 8080), .init(address: IPAddress("fd51::3")!, port: 8080),
    ])
    static let dns = LoadBalancer(name: "dns", vip: IPAddress("10.50.100.53")!, proto: .udp, port: 53, backends: [
        .init(address: IPAddress("10.51.1.2")!, port: 5353),
    ])
    static let nobody = LoadBalancer(name: "nobody", vip: IPAddress("10.50.100.9")!, proto: .tcp, port: 80, backends: [
        .init(address: IPAddress("10.51.1.2")!, port: 9999, state: .draining),
    ])
    /// 10.50.100.1:80 and 10.50.100.2:443, both over the one backend 10.51.1.2:8080.
    static let twoVIPsOneBackend = [("a", "10.50.100.1", UInt16(80)), ("b", "10.50.100.2", 443)].map { name, vip, port in
        LoadBalancer(name: name, vip: IPAddress(vip)!, proto: .tcp, port: port, backends: [.init(address: IPAddress("10.51.1.2")!, port: 8080)])
    }
    static let b = PacketBuilder()
    static let syn: UInt8 = 0x02, ack: UInt8 = 0x10

    /// The backend Maglev gives a new flow, from the data path's hash and the compiled table.
    static func pick(_ lb: LoadBalancer, client: String, port: UInt16) -> LoadBalancer.Backend {
        let active = lb.backends.map { Maglev.Backend(key: $0.maglevKey, weight: $0.state == .active ? $0.weight : 0) }
        let table = Maglev.table(active, size: lb.tableSize)
        let h = Maglev.flowHash(source: IPAddress(client)!.words, sourcePort: port, destinationPort: lb.port)
        return lb.backends[Int(table[Int(h % UInt32(table.count))])]
    }

    /// What the program must send: `frame` with new addresses/ports, TTL - 1, the
    /// neighbour's MAC as destination and the egress interface's as source, and every
    /// checksum computed from scratch.
    static func forwarded(_ frame: [UInt8], egressMAC: [UInt8]) -> [UInt8] {
        var f = frame
        let v4 = f[12] == 0x08
        let dst = Array(v4 ? f[30..<34] : f[38..<54])
        let other = FIBNamespace.otherNeighbours.contains { a in
            IPAddress(a)!.family == (v4 ? .ipv4 : .ipv6) && IPAddress(a)!.words.prefix(v4 ? 1 : 4).flatMap(PacketBuilder.be32) == dst
        }
        f[0..<6] = ArraySlice(other ? FIBNamespace.otherMAC : FIBNamespace.neighbourMAC)
        f[6..<12] = ArraySlice(egressMAC)
        f[v4 ? 14 + 8 : 14 + 7] -= 1
        return Checksums.filled(f)
    }

    func withProgram(_ lbs: [LoadBalancer], label: String = #function, _ body: @escaping (LoadedProgram, FIBNamespace) throws -> Void) throws {
        let ns = try FIBNamespace()
        defer { ns.close() }
        let program = try LoadedProgram.load(label: label)
        try program.installBalancers(lbs)
        var failure: Error?
        try ns.run {
            do { try body(program, ns) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    @Test("a new TCP flow goes to the Maglev pick: rewritten, checksums right, TTL - 1, redirected; half-open until its next packet")
    func newFlow() throws {
        try withProgram([Self.web]) { p, ns in
            let port: UInt16 = 40001
            let backend = Self.pick(Self.web, client: "10.50.0.2", port: port)
            let input = Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: port, dst: 80, flags: Self.syn)))
            let r = try p.run(input)
            #expect(r.returnValue == DP_VERDICT_REDIRECT.rawValue)
            let expected = Self.forwarded(Self.b.ipv4(src: "10.50.0.2", dst: "\(backend.address)", .tcp(src: port, dst: 8080, flags: Self.syn)), egressMAC: ns.egressMAC)
            #expect(r.output == expected, "output \(r.output)\nexpected \(expected)")
            #expect(Checksums.valid(r.output))
            let half = try p.connection(new: true, client: "10.50.0.2", port: port, vip: "10.50.100.1", vipPort: 80, proto: 6)
            #expect(half?.epoch == 1 && half?.vip == 1 && half?.kind == UInt8(DP_CT_LB.rawValue) && half?.state == UInt8(DP_CT_NEW.rawValue))
            #expect(try p.connection(client: "10.50.0.2", port: port, vip: "10.50.100.1", vipPort: 80, proto: 6) == nil)

            // The handshake's ACK moves it to the connection table and counts a connection.
            let ackIn = Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: port, dst: 80, flags: Self.ack)))
            let ackOut = try p.run(ackIn)
            #expect(ackOut.output == Self.forwarded(Self.b.ipv4(src: "10.50.0.2", dst: "\(backend.address)", .tcp(src: port, dst: 8080, flags: Self.ack)), egressMAC: ns.egressMAC))
            #expect(try p.connection(new: true, client: "10.50.0.2", port: port, vip: "10.50.100.1", vipPort: 80, proto: 6) == nil)
            let conn = try p.connection(client: "10.50.0.2", port: port, vip: "10.50.100.1", vipPort: 80, proto: 6)
            #expect(conn?.rule == half?.rule && conn?.state == UInt8(DP_CT_ESTABLISHED.rawValue))
            let slot = half!.rule
            let bs = try p.lbCounters(DP_MAP_LB_BSTATS, slot), vs = try p.lbCounters(DP_MAP_LB_VSTATS, 1)
            #expect(bs.packets == 2 && bs.connections == 1 && bs.bytes == UInt64(input.count + ackIn.count))
            #expect(vs.packets == 2 && vs.connections == 1 && vs.no_backend == 0)
            #expect(try p.counters(slots: 1).verdicts[Int(DP_VERDICT_REDIRECT.rawValue)] == 2)
        }
    }

    @Test("an established flow stays on its backend, whatever Maglev would pick")
    func establishedFlow() throws {
        try withProgram([Self.web]) { p, ns in
            // Find a client port Maglev sends to backend 0, then pin the flow to backend 1.
            let port = (UInt16(41000)...).first { Self.pick(Self.web, client: "10.50.0.2", port: $0).address == Self.web.backends[0].address }!
            try p.establish(client: "10.50.0.2", port: port, backend: 2)
            let r = try p.run(Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: port, dst: 80, flags: Self.ack), payload: Array("GET /".utf8))))
            #expect(r.returnValue == DP_VERDICT_REDIRECT.rawValue)
            #expect(r.output == Self.forwarded(Self.b.ipv4(src: "10.50.0.2", dst: "10.51.1.3", .tcp(src: port, dst: 8080, flags: Self.ack), payload: Array("GET /".utf8)), egressMAC: ns.egressMAC))
        }
    }

    @Test("a packet for no VIP passes untouched; so does one to the VIP's address on another port")
    func notForAVIP() throws {
        try withProgram([Self.web]) { p, _ in
            for input in [Self.b.ipv4(src: "10.50.0.2", dst: "10.50.0.1", .tcp(src: 40000, dst: 80, flags: Self.syn)),
                          Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: 40000, dst: 81, flags: Self.syn)),
                          Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .udp(src: 40000, dst: 80)),
                          Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .icmp(type: 8))].map(Checksums.filled) {
                let r = try p.run(input)
                #expect(r.returnValue == DP_VERDICT_PASS.rawValue && r.output == input)
            }
            #expect(try p.lbCounters(DP_MAP_LB_VSTATS, 1).packets == 0)
        }
    }

    @Test("IPv6: a new flow is rewritten with a right TCP checksum and hop limit - 1")
    func ipv6() throws {
        try withProgram([Self.web6]) { p, ns in
            for port: UInt16 in [50000, 50001, 50002, 50003] {
                let backend = Self.pick(Self.web6, client: "fd50::2", port: port)
                let r = try p.run(Checksums.filled(Self.b.ipv6(src: "fd50::2", dst: "fd50:100::1", .tcp(src: port, dst: 80, flags: Self.syn))))
                #expect(r.returnValue == DP_VERDICT_REDIRECT.rawValue)
                #expect(r.output == Self.forwarded(Self.b.ipv6(src: "fd50::2", dst: "\(backend.address)", .tcp(src: port, dst: 8080, flags: Self.syn)), egressMAC: ns.egressMAC))
            }
        }
    }

    @Test("replies on a connection the balancer made leave with the VIP as source (TCP, UDP, UDP without checksum, IPv6)")
    func replies() throws {
        try withProgram([Self.web, Self.web6, Self.dns]) { p, ns in
            // The clients' first packets make the connections.
            let v4 = Self.pick(Self.web, client: "10.50.0.2", port: 40000).address, v6 = Self.pick(Self.web6, client: "fd50::2", port: 40000).address
            for first in [Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: 40000, dst: 80, flags: Self.syn)),
                          Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.53", .udp(src: 40000, dst: 53)),
                          Self.b.ipv6(src: "fd50::2", dst: "fd50:100::1", .tcp(src: 40000, dst: 80, flags: Self.syn))] {
                #expect(try p.run(Checksums.filled(first)).returnValue == DP_VERDICT_REDIRECT.rawValue)
            }
            let cases: [([UInt8], [UInt8])] = [
                (Self.b.ipv4(src: "\(v4)", dst: "10.50.0.2", .tcp(src: 8080, dst: 40000, flags: Self.syn | Self.ack)),
                 Self.b.ipv4(src: "10.50.100.1", dst: "10.50.0.2", .tcp(src: 80, dst: 40000, flags: Self.syn | Self.ack))),
                (Self.b.ipv4(src: "10.51.1.2", dst: "10.50.0.2", .udp(src: 5353, dst: 40000)),
                 Self.b.ipv4(src: "10.50.100.53", dst: "10.50.0.2", .udp(src: 53, dst: 40000))),
                (Self.b.ipv6(src: "\(v6)", dst: "fd50::2", .tcp(src: 8080, dst: 40000, flags: Self.ack)),
                 Self.b.ipv6(src: "fd50:100::1", dst: "fd50::2", .tcp(src: 80, dst: 40000, flags: Self.ack))),
            ]
            for (input, output) in cases {
                let r = try p.run(Checksums.filled(input))
                #expect(r.returnValue == DP_VERDICT_REDIRECT.rawValue)
                #expect(r.output == Self.forwarded(output, egressMAC: ns.egressMAC), "\(output)")
            }
            // No checksum stays no checksum.
            let bare = try p.run(Self.b.ipv4(src: "10.51.1.2", dst: "10.50.0.2", .udp(src: 5353, dst: 40000)))
            var expected = Self.forwarded(Self.b.ipv4(src: "10.50.100.53", dst: "10.50.0.2", .udp(src: 53, dst: 40000)), egressMAC: ns.egressMAC)
            expected[14 + 20 + 6] = 0
            expected[14 + 20 + 7] = 0
            #expect(bare.output == expected)
            // The same backend address on a port it does not serve: not a reply. Nor is
            // its service port on a connection the balancer did not make (a client that
            // talks to the backend straight through this host).
            for other in [Self.b.ipv4(src: "10.51.1.2", dst: "10.50.0.2", .tcp(src: 22, dst: 40000, flags: Self.ack)),
                          Self.b.ipv4(src: "10.51.1.2", dst: "10.50.0.2", .tcp(src: 8080, dst: 40999, flags: Self.syn | Self.ack)),
                          Self.b.ipv4(src: "10.51.1.2", dst: "10.50.0.2", .udp(src: 5353, dst: 40999))].map(Checksums.filled) {
                let r = try p.run(other)
                #expect(r.returnValue == DP_VERDICT_PASS.rawValue && r.output == other)
            }
        }
    }

    @Test("a backend's SYN-ACK to the port of a client whose connection through the VIP has finished answers that client's own connection straight to the backend: it passes untouched")
    func finishedConnectionReusedTuple() throws {
        try withProgram([Self.web]) { p, _ in
            let backend = Self.pick(Self.web, client: "10.50.0.2", port: 40000).address
            for flags in [Self.syn, Self.ack, Self.ack | 0x01] { // opened, established, finished (FIN)
                let r = try p.run(Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: 40000, dst: 80, flags: flags))))
                #expect(r.returnValue == DP_VERDICT_REDIRECT.rawValue)
            }
            // The client's kernel gives port 40000 to a connection straight to the backend.
            let synAck = Checksums.filled(Self.b.ipv4(src: "\(backend)", dst: "10.50.0.2", .tcp(src: 8080, dst: 40000, flags: Self.syn | Self.ack)))
            for _ in 0..<2 {
                let r = try p.run(synAck)
                #expect(r.returnValue == DP_VERDICT_PASS.rawValue && r.output == synAck, "answered as the VIP: \(r.returnValue)")
            }
        }
    }

    @Test("one backend serves two VIPs: each connection's replies leave from its own VIP")
    func backendOfTwoVIPs() throws {
        try withProgram(Self.twoVIPsOneBackend) { p, ns in
            for (vip, port, client) in [("10.50.100.1", UInt16(80), UInt16(40001)), ("10.50.100.2", 443, 40002)] {
                let first = try p.run(Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: vip, .tcp(src: client, dst: port, flags: Self.syn))))
                #expect(first.returnValue == DP_VERDICT_REDIRECT.rawValue)
            }
            for (vip, port, client) in [("10.50.100.1", UInt16(80), UInt16(40001)), ("10.50.100.2", 443, 40002)] {
                let r = try p.run(Checksums.filled(Self.b.ipv4(src: "10.51.1.2", dst: "10.50.0.2", .tcp(src: 8080, dst: client, flags: Self.syn | Self.ack))))
                #expect(r.output == Self.forwarded(Self.b.ipv4(src: vip, dst: "10.50.0.2", .tcp(src: port, dst: client, flags: Self.syn | Self.ack)), egressMAC: ns.egressMAC))
            }
        }
    }

    @Test("a client port whose connection to one VIP is closing may open one to another VIP on the same backend; while it is open, that is refused as no_backend")
    func reclaimedReplyTuple() throws {
        try withProgram(Self.twoVIPsOneBackend) { p, ns in
            func client(_ vip: String, _ port: UInt16, _ flags: UInt8) throws -> UInt32 {
                try p.run(Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: vip, .tcp(src: 40000, dst: port, flags: flags)))).returnValue
            }
            #expect(try client("10.50.100.1", 80, Self.syn) == DP_VERDICT_REDIRECT.rawValue)
            #expect(try client("10.50.100.1", 80, Self.ack) == DP_VERDICT_REDIRECT.rawValue)
            // Open: the same client port to the other VIP would be answered on its tuple.
            #expect(try client("10.50.100.2", 443, Self.syn) == DP_VERDICT_DROP.rawValue)
            #expect(try p.lbCounters(DP_MAP_LB_VSTATS, 2).no_backend == 1)
            // Closing (FIN): its reply tuple is given to the new connection.
            #expect(try client("10.50.100.1", 80, Self.ack | 0x01) == DP_VERDICT_REDIRECT.rawValue)
            #expect(try client("10.50.100.2", 443, Self.syn) == DP_VERDICT_REDIRECT.rawValue)
            let reply = try p.run(Checksums.filled(Self.b.ipv4(src: "10.51.1.2", dst: "10.50.0.2", .tcp(src: 8080, dst: 40000, flags: Self.syn | Self.ack))))
            #expect(reply.output == Self.forwarded(Self.b.ipv4(src: "10.50.100.2", dst: "10.50.0.2", .tcp(src: 443, dst: 40000, flags: Self.syn | Self.ack)), egressMAC: ns.egressMAC))
        }
    }

    @Test("a draining backend keeps its connections and takes no new flows")
    func draining() throws {
        try withProgram([Self.web]) { p, ns in
            try p.establish(client: "10.50.0.2", port: 45000, backend: 3) // 10.51.1.4, draining
            let kept = try p.run(Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: 45000, dst: 80, flags: Self.ack))))
            #expect(kept.output == Self.forwarded(Self.b.ipv4(src: "10.50.0.2", dst: "10.51.1.4", .tcp(src: 45000, dst: 8080, flags: Self.ack)), egressMAC: ns.egressMAC))
            var seen: Set<String> = []
            for port in UInt16(46000)..<46200 {
                let r = try p.run(Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: port, dst: 80, flags: Self.syn))))
                seen.insert(IPAddress(family: .ipv4, words: [UInt32(r.output[30]) << 24 | UInt32(r.output[31]) << 16 | UInt32(r.output[32]) << 8 | UInt32(r.output[33]), 0, 0, 0]).description)
            }
            #expect(seen == ["10.51.1.2", "10.51.1.3"], "200 new flows went to \(seen)")
        }
    }

    @Test("a VIP no backend takes drops new flows as no_backend")
    func noBackend() throws {
        try withProgram([Self.nobody]) { p, _ in
            let r = try p.run(Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.9", .tcp(src: 40000, dst: 80, flags: Self.syn))))
            #expect(r.returnValue == DP_VERDICT_DROP.rawValue)
            let c = try p.counters(slots: 1)
            #expect(c.reasons[Int(DP_REASON_NO_BACKEND.rawValue)] == 1)
            #expect(try p.lbCounters(DP_MAP_LB_VSTATS, 1).no_backend == 1)
        }
    }

    @Test("a connection whose backend was removed (epoch 0) is balanced afresh")
    func removedBackend() throws {
        try withProgram([Self.web]) { p, ns in
            let port: UInt16 = 47000
            try p.establish(client: "10.50.0.2", port: port, backend: 3)
            var gone: dp_lb_backend = try p.object.map(DP_MAP_LB_BACKENDS).lookup(UInt32(3))!
            gone.epoch = 0
            try p.object.map(DP_MAP_LB_BACKENDS).update(UInt32(3), gone)
            let backend = Self.pick(Self.web, client: "10.50.0.2", port: port)
            let r = try p.run(Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: port, dst: 80, flags: Self.ack))))
            #expect(r.output == Self.forwarded(Self.b.ipv4(src: "10.50.0.2", dst: "\(backend.address)", .tcp(src: port, dst: 8080, flags: Self.ack)), egressMAC: ns.egressMAC))
            let moved = try p.connection(new: true, client: "10.50.0.2", port: port, vip: "10.50.100.1", vipPort: 80, proto: 6)
            #expect(moved != nil && moved?.rule != 3 && moved?.epoch == 1)
            #expect(try p.connection(client: "10.50.0.2", port: port, vip: "10.50.100.1", vipPort: 80, proto: 6) == nil)
            // The old backend's replies are no longer translated.
            let late = Checksums.filled(Self.b.ipv4(src: "10.51.1.4", dst: "10.50.0.2", .tcp(src: 8080, dst: port, flags: Self.ack)))
            #expect(try p.run(late).output == late)
        }
    }

    @Test("without a neighbour entry the rewritten packet goes up the stack (XDP_PASS), TTL untouched")
    func stackFallback() throws {
        let lb = LoadBalancer(name: "far", vip: IPAddress("10.50.100.7")!, proto: .udp, port: 7, backends: [.init(address: IPAddress("10.51.9.9")!, port: 7007)])
        try withProgram([lb]) { p, _ in
            let r = try p.run(Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.7", .udp(src: 1234, dst: 7))))
            #expect(r.returnValue == DP_VERDICT_PASS.rawValue)
            #expect(r.output == Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: "10.51.9.9", .udp(src: 1234, dst: 7007))))
        }
    }
}

@Suite("Kernel: a SYN flood against the connection table", .serialized)
struct SynFloodTests {
    @Test("200,000 SYNs from new sources fill only the table of new connections: 1,000 established connections all stay")
    func synFloodKeepsConnections() throws {
        let program = try LoadedProgram.load()
        try program.installBalancers([LoadBalancerTests.web])
        let table = try program.object.map(DP_MAP_CT)
        let flows = try (0..<1000).map { i in
            try program.establish(client: "10.60.\(i / 250).\(i % 250 + 1)", port: 40000, backend: UInt32(1 + i % 2))
        }
        // The benchmark's wrapper restores the SYN before every run and gives each run a
        // source port and address of its own: 200,000 new flows, 6 times the half-open table.
        let wrapper = try BPFObject(.restoreFrame, pinRoot: nil)
        try wrapper.map("restore_target").update(UInt32(0), program.programFD)
        let syn = PacketBuilder().ipv4(src: "10.70.0.0", dst: "10.50.100.1", .tcp(src: 1024, dst: 80, flags: 0x02))
        let head = syn.prefix(64).withUnsafeBytes { raw in (0..<8).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) } }
        try wrapper.map("restore_frame").update(UInt32(0), (head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7], UInt64(1), UInt64(0)))
        _ = try TestRun.run(programFD: try wrapper.programFD("restore_run"), packet: syn, repeat: 200_000)

        var kept = 0
        for flow in flows where try table.lookup(flow, as: dp_ct_entry.self) != nil { kept += 1 }
        #expect(kept == 1000, "established connections left: \(kept) of 1000")
        let halfOpen = try program.object.map(DP_MAP_CT_NEW).keys(as: dp_ct_key.self).count
        #expect(halfOpen > Int(DP_CT_NEW_MAX) / 2, "the flood went to the table of new connections: \(halfOpen) entries")
        let balanced = try program.lbCounters(DP_MAP_LB_VSTATS, 1)
        #expect(balanced.packets == 200_000 && balanced.connections == 0, "\(balanced.packets) SYNs balanced, \(balanced.connections) connections")
    }
}

/// Direct server return, and two nodes with one config (the fleet behind ECMP).
extension LoadBalancerTests {
    @Test("DSR: a new flow and its next packets leave unchanged at L3 for the Maglev pick's MAC (TTL - 1), on both families; replies through the LB are not translated")
    func directServerReturn() throws {
        var web = Self.web, web6 = Self.web6
        web.forwarding = .dsr
        web6.forwarding = .dsr
        for i in web.backends.indices { web.backends[i].port = 80 }
        for i in web6.backends.indices { web6.backends[i].port = 80 }
        try withProgram([web, web6]) { p, ns in
            for (lb, client, vip) in [(web, "10.50.0.2", "10.50.100.1"), (web6, "fd50::2", "fd50:100::1")] {
                let v4 = lb.vip.family == .ipv4
                for port in UInt16(41000)..<41040 {
                    let backend = Self.pick(lb, client: client, port: port)
                    for flags in [Self.syn, Self.ack] {
                        let packet = v4 ? Self.b.ipv4(src: client, dst: vip, .tcp(src: port, dst: 80, flags: flags))
                                        : Self.b.ipv6(src: client, dst: vip, .tcp(src: port, dst: 80, flags: flags))
                        let r = try p.run(Checksums.filled(packet))
                        #expect(r.returnValue == DP_VERDICT_REDIRECT.rawValue)
                        var expected = Checksums.filled(packet)
                        let other = FIBNamespace.otherNeighbours.contains("\(backend.address)")
                        expected[0..<6] = ArraySlice(other ? FIBNamespace.otherMAC : FIBNamespace.neighbourMAC)
                        expected[6..<12] = ArraySlice(ns.egressMAC)
                        expected[v4 ? 22 : 21] -= 1
                        #expect(r.output == Checksums.filled(expected), "\(lb.name) port \(port) to \(backend.address): \(r.output)")
                    }
                }
                // The backend answers from the VIP; through the LB host it passes as it is.
                let reply = Checksums.filled(v4 ? Self.b.ipv4(src: vip, dst: client, .tcp(src: 80, dst: 41000, flags: Self.ack))
                                                : Self.b.ipv6(src: vip, dst: client, .tcp(src: 80, dst: 41000, flags: Self.ack)))
                let r = try p.run(reply)
                #expect(r.returnValue == DP_VERDICT_REDIRECT.rawValue)
                let addresses = v4 ? 26..<38 : 22..<58
                #expect(Array(r.output[addresses]) == Array(reply[addresses]), "addresses and ports untouched")
            }
        }
    }

    @Test("two nodes with the same config build byte-identical Maglev tables and send every flow to the same backend (ECMP may move a flow between them)")
    func identicalNodes() throws {
        let lbs = [Self.web, Self.web6, Self.dns]
        var rings: [[UInt32]] = [], picks: [[[UInt8]]] = []
        for node in ["a", "b"] {
            try withProgram(lbs, label: "identicalNodes-\(node)") { p, _ in
                let maps = try GenerationMaps(p.object)
                let running = try #require(try maps.running())
                let ring = try #require(try maps.table(.ring, slot: running.slot))
                let count = try ring.info().maxEntries
                rings.append(try (0..<count).map { (i: Int) throws -> UInt32 in try ring.lookup(UInt32(i), as: UInt32.self) ?? .max })
                var out: [[UInt8]] = []
                for port in UInt16(50000)..<50300 {
                    let r = try p.run(Checksums.filled(Self.b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: port, dst: 80, flags: Self.syn))))
                    out.append(Array(r.output[30..<34] + r.output[36..<38])) // the backend: destination address and port
                }
                picks.append(out)
            }
        }
        #expect(rings.count == 2 && rings[0].count == 2 * 65537 + 65537 && rings[0] == rings[1], "the rings of the two nodes differ")
        #expect(picks.count == 2 && picks[0] == picks[1], "a flow went to different backends on the two nodes")
        #expect(Set(picks.first ?? []).count == 2, "300 flows spread over both active backends")
    }
}
