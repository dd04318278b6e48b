import Glibc
import NIOCore
import XDPCtlCore
import XDPCtlKit

/// The agent's health checks: which backends to check (those of load balancers with a
/// `health_check`, in the running config), when each is due, and the results the event
/// loop hands back. Used from the agent's loop, which collects the results every `tick`
/// (a thousand backends a second are a few dozen results a tick, recorded together);
/// the checks themselves run on the event loop (HealthProbe).
final class HealthChecker {
    private struct Target {
        let key: String
        let interface: String
        let backendID: String
        let address: String
        let port: Int
        let check: LoadBalancer.HealthCheck
        var due: ContinuousClock.Instant
        var running = false
    }

    private struct Finished: Sendable {
        let key: String
        let result: HealthCheckResult
    }

    static let tick: Duration = .milliseconds(50)

    private let loop: any EventLoop
    private let finished = Mailbox<Finished>()
    /// An array, scanned every tick; `position` finds one by key.
    private var targets: [Target] = []
    private var position: [String: Int] = [:]
    private var lastTick = ContinuousClock.now - tick

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// Checks the backends of `config`'s load balancers that have health checks. A
    /// backend checked already keeps its schedule; a new one is first checked at a random
    /// point of its first interval (a thousand backends do not all go at once). Nil:
    /// nothing is applied, nothing to check.
    func follow(_ config: Config?) {
        var next: [Target] = []
        for iface in config?.interfaces ?? [] {
            for lb in iface.loadBalancers {
                guard let check = lb.healthCheck else { continue }
                for b in lb.backends {
                    let id = LoadBalancerCompiler.backendID(lb, b)
                    let key = "\(iface.name)|\(id)"
                    let interval = Int64(check.intervalMs)
                    var t = Target(key: key, interface: iface.name, backendID: id, address: "\(b.address)", port: Int(check.port ?? b.port),
                                   check: check, due: .now + .milliseconds(Int64.random(in: 0..<interval)))
                    if let i = position[key], targets[i].check == check, targets[i].port == t.port {
                        (t.due, t.running) = (targets[i].due, targets[i].running)
                    }
                    next.append(t)
                }
            }
        }
        targets = next
        position = Dictionary(next.enumerated().map { ($1.key, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// When the loop next has work here, a tick after the last: checks that fell due
    /// meanwhile start then, and the results are collected. Nil: no checks.
    var nextWake: ContinuousClock.Instant? {
        targets.isEmpty ? nil : lastTick + Self.tick
    }

    /// Starts every check that is due.
    func startDue() {
        let now = ContinuousClock.now
        guard now >= lastTick + Self.tick else { return }
        lastTick = now
        for i in targets.indices where !targets[i].running && targets[i].due <= now {
            let t = targets[i]
            // The next one is due an interval after this one was, or after now when this
            // one started more than an interval late; one never starts while the last runs.
            let interval = Duration.milliseconds(Int64(t.check.intervalMs))
            targets[i].due = t.due + interval > now ? t.due + interval : now + interval
            targets[i].running = true
            let finished = self.finished
            let (key, interface, backendID) = (t.key, t.interface, t.backendID)
            HealthProbe.run(t.check, address: t.address, port: t.port, on: loop) { outcome in
                let result = HealthCheckResult(interface: interface, backendID: backendID, result: outcome.result,
                                               latencyMicroseconds: outcome.latencyMicroseconds,
                                               checkedAt: Dataplane.now(CLOCK_REALTIME))
                finished.post(Finished(key: key, result: result))
            }
        }
    }

    /// The checks that finished since the last call, of backends still checked.
    func takeResults() -> [HealthCheckResult] {
        var out: [HealthCheckResult] = []
        for done in finished.take() {
            guard let i = position[done.key] else { continue }
            targets[i].running = false
            out.append(done.result)
        }
        return out
    }
}
