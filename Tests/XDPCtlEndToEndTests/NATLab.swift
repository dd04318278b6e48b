import Foundation
import Glibc
import Synchronization
import Testing
import XDPCtlCore

private let natLabCounter = Atomic<Int>(0)

/// A LAN namespace (clients), a router namespace running xdpctl, and a WAN namespace
/// (servers), each link a veth pair with a /24 and a /64; with `far`, a fourth namespace
/// behind the WAN one, which routes to it over a link whose WAN end has an MTU of 1280
/// (so a hop after the NAT router answers with time exceeded and packet too big). The
/// WAN has no route to the LAN: only translated traffic gets an answer. The router's WAN
/// interface holds the NAT rules. Servers are real sockets (Python), which report the
/// peer they saw. Everything is removed on close().
final class NATLab: RouterLab {
    let net: Int
    let lan: String, router: String, wan: String, far: String?
    let lanIf: String, routerLanIf: String, routerWanIf: String, wanIf: String
    let pinRoot: String
    var background: [Process] = []

    var clientV4: String { "10.\(net).1.2" }
    var clientV6: String { "fd00:\(net):1::2" }
    /// A second LAN address, for rules about one client.
    var client2V4: String { "10.\(net).1.3" }
    var client2V6: String { "fd00:\(net):1::3" }
    var routerWanV4: String { "10.\(net).2.1" }
    var routerWanV6: String { "fd00:\(net):2::1" }
    var serverV4: String { "10.\(net).2.2" }
    var serverV6: String { "fd00:\(net):2::2" }
    var farV4: String { "10.\(net).3.2" }
    var farV6: String { "fd00:\(net):3::2" }

    init(far withFar: Bool = false) throws {
        #expect(getuid() == 0, "end-to-end tests need root: run them through scripts/test.sh")
        let n = natLabCounter.wrappingAdd(1, ordering: .relaxed).newValue
        net = 200 + n
        let tag = "\(getpid() % 100000)n\(n)"
        lan = "xnat-l\(tag)"; router = "xnat-r\(tag)"; wan = "xnat-w\(tag)"
        far = withFar ? "xnat-f\(tag)" : nil
        lanIf = "nl\(tag)"; routerLanIf = "nrl\(tag)"; routerWanIf = "nrw\(tag)"; wanIf = "nw\(tag)"
        pinRoot = "/sys/fs/bpf/xdpctl-e2e-nat-\(tag)"
        let (l, r, w) = (lan, router, wan)
        var steps: [[String]] = [
            ["ip", "netns", "add", l], ["ip", "netns", "add", r], ["ip", "netns", "add", w],
            ["ip", "link", "add", lanIf, "netns", l, "type", "veth", "peer", "name", routerLanIf, "netns", r],
            ["ip", "link", "add", routerWanIf, "netns", r, "type", "veth", "peer", "name", wanIf, "netns", w],
            ["ip", "-n", l, "addr", "add", "\(clientV4)/24", "dev", lanIf], ["ip", "-n", l, "addr", "add", "\(client2V4)/24", "dev", lanIf],
            ["ip", "-n", l, "addr", "add", "\(clientV6)/64", "dev", lanIf, "nodad"], ["ip", "-n", l, "addr", "add", "\(client2V6)/64", "dev", lanIf, "nodad"],
            ["ip", "-n", r, "addr", "add", "10.\(net).1.1/24", "dev", routerLanIf], ["ip", "-n", r, "addr", "add", "fd00:\(net):1::1/64", "dev", routerLanIf, "nodad"],
            ["ip", "-n", r, "addr", "add", "\(routerWanV4)/24", "dev", routerWanIf], ["ip", "-n", r, "addr", "add", "\(routerWanV6)/64", "dev", routerWanIf, "nodad"],
            ["ip", "-n", w, "addr", "add", "\(serverV4)/24", "dev", wanIf], ["ip", "-n", w, "addr", "add", "\(serverV6)/64", "dev", wanIf, "nodad"],
        ]
        for (ns, ifname) in [(l, lanIf), (r, routerLanIf), (r, routerWanIf), (w, wanIf)] {
            steps += [["ip", "-n", ns, "link", "set", "lo", "up"], ["ip", "-n", ns, "link", "set", ifname, "up"]]
        }
        steps += [
            ["ip", "-n", l, "route", "add", "default", "via", "10.\(net).1.1"], ["ip", "-n", l, "-6", "route", "add", "default", "via", "fd00:\(net):1::1"],
            ["ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"],
        ]
        // Frames XDP redirects need GRO on the receiving end; senders compute checksums in full.
        steps += BalancerLab.vethFixes(l, lanIf) + BalancerLab.vethFixes(w, wanIf)
            + [["ip", "netns", "exec", r, "ethtool", "-K", routerLanIf, "gro", "on"], ["ip", "netns", "exec", r, "ethtool", "-K", routerWanIf, "gro", "on"]]
        if let f = far {
            let (wf, fw) = ("nwf\(tag)", "nf\(tag)")
            steps += [
                ["ip", "netns", "add", f],
                ["ip", "link", "add", wf, "netns", w, "mtu", "1280", "type", "veth", "peer", "name", fw, "netns", f],
                ["ip", "-n", w, "addr", "add", "10.\(net).3.1/24", "dev", wf], ["ip", "-n", w, "addr", "add", "fd00:\(net):3::1/64", "dev", wf, "nodad"],
                ["ip", "-n", f, "addr", "add", "\(farV4)/24", "dev", fw], ["ip", "-n", f, "addr", "add", "\(farV6)/64", "dev", fw, "nodad"],
                ["ip", "-n", f, "link", "set", "lo", "up"], ["ip", "-n", f, "link", "set", fw, "up"], ["ip", "-n", w, "link", "set", wf, "up"],
                ["ip", "-n", f, "route", "add", "default", "via", "10.\(net).3.1"], ["ip", "-n", f, "-6", "route", "add", "default", "via", "fd00:\(net):3::1"],
                ["ip", "netns", "exec", w, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"],
                ["ip", "-n", r, "route", "add", "10.\(net).3.0/24", "via", serverV4], ["ip", "-n", r, "-6", "route", "add", "fd00:\(net):3::/64", "via", serverV6],
            ] + BalancerLab.vethFixes(f, fw)
        }
        for step in steps {
            let res = try sh(step)
            if res.status != 0 { close(); throw Lab.LabError(message: "\(step.joined(separator: " ")): \(res.err)") }
        }
        // Servers: in the WAN (SNAT's far end) and in the LAN (DNAT's target).
        try spawn(wan, ["python3", "-c", Self.peerServer, "7000"])
        try spawn(lan, ["python3", "-c", Self.peerServer, "8000"])
        if let far { try spawn(far, ["python3", "-c", Self.peerServer, "7000"]) }
        for (ns, port) in [(wan, 7000), (lan, 8000)] + (far.map { [($0, 7000)] } ?? []) { try waitListening(ns, tcp: port, udp: port) }
    }

    /// TCP and UDP on `port`, both families: each connection or datagram is answered with
    /// "ADDRESS PORT" of the peer as the server saw it (a TCP connection answers every line).
    static let peerServer = #"""
    import socket, sys, threading
    port = int(sys.argv[1])
    def tcp(family):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port)); s.listen(4096)
        while True:
            c, peer = s.accept()
            threading.Thread(target=serve, args=(c, peer), daemon=True).start()
    def serve(c, peer):
        with c:
            f = c.makefile("rb")
            for line in f:
                # "bulk N": N bytes follow; answered with how many arrived.
                if line.startswith(b"bulk "):
                    c.sendall(f"{len(f.read(int(line.split()[1])))}\n".encode())
                    continue
                c.sendall(f"{peer[0]} {peer[1]}\n".encode())
    def udp(family):
        s = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        while True:
            data, peer = s.recvfrom(65535)
            answer = f"{peer[0]} {peer[1]}\n".encode()
            # A datagram of "big" and padding is answered at its own size (both ways fragmented).
            s.sendto(answer + b"." * (len(data) - len(answer)) if data.startswith(b"big") else answer, peer)
    for f in (socket.AF_INET, socket.AF_INET6):
        threading.Thread(target=tcp, args=(f,), daemon=True).start()
        threading.Thread(target=udp, args=(f,), daemon=True).start()
    threading.Event().wait()
    """#

    /// `count` TCP connections, one after another (from the source address given), each
    /// sending one line; prints the peer each server answer named, one per line ("FAIL
    /// reason" for a failed one).
    static let tcpClient = #"""
    import socket, sys
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    source = sys.argv[4] if len(sys.argv) > 4 else None
    for i in range(count):
        try:
            with socket.create_connection((host, port), timeout=3, source_address=(source, 0) if source else None) as s:
                s.sendall(b"hi\n")
                print(s.makefile().readline().strip(), flush=True)
        except Exception as e:
            print("FAIL", e, flush=True)
    """#

    /// Holds `count` TCP connections open from `source` at once, then one more; prints the
    /// extra one's result ("OK"/"FAIL"), then checks each held one still answers.
    static let holdClient = #"""
    import socket, sys
    host, port, count, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    held = []
    for i in range(count):
        s = socket.create_connection((host, port), timeout=3, source_address=(source, 0))
        s.sendall(b"hi\n"); f = s.makefile(); print("held", f.readline().strip(), flush=True)
        held.append((s, f))
    try:
        socket.create_connection((host, port), timeout=2, source_address=(source, 0)).close()
        print("extra OK", flush=True)
    except Exception as e:
        print("extra FAIL", e, flush=True)
    alive = 0
    for s, f in held:
        try:
            s.sendall(b"again\n")
            if f.readline(): alive += 1
        except Exception:
            pass
    print("alive", alive, flush=True)
    """#

    /// Sends `bytes` in one TCP connection (from the source address given) and prints how
    /// many the server says arrived ("FAIL reason" when it did not finish in 20 s).
    static let bulkClient = #"""
    import socket, sys
    host, port, size, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    try:
        with socket.create_connection((host, port), timeout=20, source_address=(source, 0)) as s:
            s.sendall(f"bulk {size}\n".encode() + b"x" * size)
            print(s.makefile().readline().strip(), flush=True)
    except Exception as e:
        print("FAIL", e, flush=True)
    """#

    /// `count` UDP request/replies, each from a socket of its own (bound to the source
    /// address given), of `size` bytes each way when given (fragmented when larger than
    /// the MTU); prints the peer each answer named ("FAIL" when none came, or a short one).
    static let udpClient = #"""
    import socket, sys
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    source = sys.argv[4] if len(sys.argv) > 4 else None
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for i in range(count):
        s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(2)
        if source: s.bind((source, 0))
        try:
            s.sendto(b"big" + b"." * (size - 3) if size else b"hi", (host, port))
            answer = s.recvfrom(65535)[0]
            print(answer.decode().split("\n")[0] if len(answer) >= size else "FAIL short", flush=True)
        except Exception as e:
            print("FAIL", e, flush=True)
        s.close()
    """#

    /// Runs a Python client in namespace `ns`; returns its output lines.
    func python(_ ns: String, _ script: String, _ args: [String], timeout: Double = 120) throws -> [String] {
        let r = try sh(["ip", "netns", "exec", ns, "python3", "-c", script] + args, timeout: timeout)
        return r.out.split(separator: "\n").map(String.init)
    }

    var namespaces: [String] { [lan, router, wan] + (far.map { [$0] } ?? []) }

    /// A config: `nat` (JSON text) on the WAN side; the LAN side attached, with
    /// `fastPath` as its nat_fast_path ("auto" is off on these veths; "on" is safe here:
    /// the LAN and WAN hosts send with full checksums).
    func config(_ nat: String, fastPath: String = "auto") -> String {
        #"{"version": 1, "interfaces": [{"name": "\#(routerLanIf)", "nat_fast_path": "\#(fastPath)"}, {"name": "\#(routerWanIf)", "nat": \#(nat)}]}"#
    }

    func json(_ args: String...) throws -> JSONValue {
        let r = try sh([xdpctlBinary] + args + ["--json", "--pin-root", pinRoot])
        return try JSONParser.parse(Array(r.out.utf8))
    }
}
