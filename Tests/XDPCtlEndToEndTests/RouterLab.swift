import Foundation
import Glibc

/// What the labs with a forwarding namespace running xdpctl share (BalancerLab, NATLab):
/// servers in the background, bounded in time; xdpctl under the lab's pin root against
/// that namespace; and the teardown of everything the lab made.
protocol RouterLab: AnyObject {
    var pinRoot: String { get }
    /// The namespace whose interfaces xdpctl attaches to.
    var router: String { get }
    /// Every namespace the lab made.
    var namespaces: [String] { get }
    var background: [Process] { get set }
}

extension RouterLab {
    func close() {
        background.forEach(stopBounded)
        _ = try? sh([xdpctlBinary, "down", "--pin-root", pinRoot])
        for ns in namespaces { _ = try? sh(["ip", "netns", "del", ns]) }
    }

    func spawn(_ ns: String, _ args: [String]) throws {
        background.append(try spawnBounded(ns, args, seconds: 300))
    }

    /// Waits until something in `ns` listens on TCP port `tcp` and UDP port `udp`.
    func waitListening(_ ns: String, tcp: Int, udp: Int) throws {
        for _ in 0..<50 {
            let t = try sh(["ip", "netns", "exec", ns, "ss", "-Hltn"]).out, u = try sh(["ip", "netns", "exec", ns, "ss", "-Hlun"]).out
            if t.contains(":\(tcp) ") && u.contains(":\(udp) ") { return }
            usleep(100_000)
        }
        throw Lab.LabError(message: "the servers in \(ns) did not start")
    }

    @discardableResult
    func xdpctl(_ args: String..., stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
        try sh([xdpctlBinary] + args + ["--pin-root", pinRoot], stdin: stdin)
    }

    @discardableResult
    func apply(_ config: String) throws -> (status: Int32, out: String, err: String) {
        try sh([xdpctlBinary, "apply", "-f", "-", "--netns", router, "--pin-root", pinRoot], stdin: config)
    }
}
