import Dispatch
import Glibc
import Subprocess
import Synchronization
import SystemPackage
import XDPCtlCore

/// Where the agent announces its VIPs: a file of BIRD configuration that the operator's
/// bird.conf includes, and BIRD's control socket.
public struct BirdTarget: Sendable {
    public var include: String
    public var socket: String

    public init(include: String, socket: String) {
        (self.include, self.socket) = (include, socket)
    }
}

/// Announces VIPs through BIRD (xdpctl speaks no BGP): writes them into the include file
/// as two `protocol static` blocks, `xdpctl4` and `xdpctl6`, and has BIRD read its
/// configuration again with `birdc -s SOCKET configure`, which changes static routes
/// without resetting BGP sessions. bird.conf exports those protocols' routes over BGP
/// (docs/fleet.md).
final class Announcer {
    let target: BirdTarget
    /// What BIRD last read; nil when unknown (never written, or the last try failed).
    private(set) var announced: [IPAddress]?

    /// How long `birdc configure` may take.
    static let timeout: Duration = .seconds(10)

    init(_ target: BirdTarget) {
        self.target = target
    }

    /// Makes BIRD announce exactly `vips` (in this order in the file). Nothing happens when
    /// BIRD read that list already. Throws what went wrong; `announced` is then unknown,
    /// so the next call tries again.
    func announce(_ vips: [IPAddress]) throws(AgentError) {
        if announced == vips { return }
        announced = nil
        try write(Self.render(vips))
        try configure()
        announced = vips
    }

    /// The include file's text.
    static func render(_ vips: [IPAddress]) -> String {
        func block(_ name: String, _ family: AddressFamily) -> String {
            let routes = vips.filter { $0.family == family }.map { "\troute \($0)/\(family.bits) blackhole;\n" }.joined()
            return "protocol static \(name) {\n\t\(family == .ipv4 ? "ipv4" : "ipv6");\n\(routes)}\n"
        }
        return """
            # Written by xdpctl agent: the VIPs this node announces. Rewritten on every change
            # (then `birdc configure`); edits are lost. bird.conf includes this file and
            # exports these protocols' routes over BGP with next hop self.
            \(block("xdpctl4", .ipv4))\(block("xdpctl6", .ipv6))
            """
    }

    /// Replaces the file whole: a new file in its directory, renamed onto it, so BIRD
    /// never reads half of one.
    private func write(_ text: String) throws(AgentError) {
        let path = FilePath(target.include)
        let temporary = FilePath(target.include + ".xdpctl-new")
        do {
            let fd = try FileDescriptor.open(temporary, .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: .ownerReadWrite)
            try fd.closeAfter {
                // Readable by BIRD, which runs as its own user, whatever the umask.
                guard fchmod(fd.rawValue, 0o644) == 0 else { throw Errno(rawValue: errno) }
                _ = try fd.writeAll(Array(text.utf8))
            }
            guard rename(temporary.string, path.string) == 0 else { throw Errno(rawValue: errno) }
        } catch {
            throw .bird("cannot write \(target.include): \(error)")
        }
    }

    /// `birdc -v -s SOCKET configure`: succeeds when birdc exits 0 and BIRD answered no
    /// error (its verbose replies start with a code; 8xxx and 9xxx are errors).
    private func configure() throws(AgentError) {
        let socket = target.socket
        let outcome = Self.blocking(timeout: Self.timeout) {
            try await run(.name("birdc"), arguments: ["-v", "-s", socket, "configure"],
                          output: .string(limit: 64 * 1024), error: .combinedWithOutput)
        }
        switch outcome {
        case .none:
            throw .bird("birdc -s \(socket) configure: no answer in \(Self.timeout)")
        case .failure(let error):
            throw .bird("cannot run birdc: \(error)")
        case .success(let result):
            let lines = result.standardOutput.split(separator: "\n").map(String.init)
            let errors = lines.filter { $0.first == "8" || $0.first == "9" }
            guard result.terminationStatus.isSuccess, errors.isEmpty else {
                let said = (errors.isEmpty ? lines : errors).map { $0.count > 5 && $0.prefix(4).allSatisfy(\.isNumber) ? String($0.dropFirst(5)) : $0 }
                throw .bird("birdc -s \(socket) configure: \(said.joined(separator: "; "))")
            }
        }
    }

    /// Runs `body` on the concurrency pool and waits for it here, up to `timeout` (nil:
    /// it did not finish; it is cancelled). The agent's loop is synchronous, and an
    /// announcement must be done before what follows it (an apply that removes a VIP).
    static func blocking<T: Sendable>(timeout: Duration, _ body: @escaping @Sendable () async throws -> T) -> Result<T, any Error>? {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<T, any Error>?>(nil)
        let task = Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            outcome.withLock { $0 = result }
            done.signal()
        }
        let (seconds, attoseconds) = timeout.components
        if done.wait(timeout: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))) == .timedOut {
            task.cancel()
            return nil
        }
        return outcome.withLock { $0 }
    }
}
