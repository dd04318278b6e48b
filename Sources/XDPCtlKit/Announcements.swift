import Glibc
import XDPCtlCore

/// A VIP address of the running config, and whether a router should send it here: the
/// agent announces it over BGP (through BIRD) while `healthy` and the node is not drained.
public struct ServedVIP: Sendable, Hashable {
    public var address: IPAddress
    /// One of its load balancers has a backend that takes new flows: active, and not held
    /// down by its health checks.
    public var healthy: Bool

    public init(address: IPAddress, healthy: Bool) {
        (self.address, self.healthy) = (address, healthy)
    }

    /// The VIP addresses of `config`'s load balancers on the interfaces named in
    /// `attached`, each once, in the config's order; `down` names the backends (by
    /// LoadBalancerCompiler.backendID) that health checks hold down, by interface. A
    /// recorded down counts only for a balancer with a health check, as in its tables.
    public static func of(_ config: Config, attached: Set<String>, down: [String: Set<String>]) -> [ServedVIP] {
        var order: [IPAddress] = []
        var healthy: [IPAddress: Bool] = [:]
        for iface in config.interfaces where attached.contains(iface.name) {
            let held = down[iface.name] ?? []
            for lb in iface.loadBalancers {
                let live = lb.backends.contains { LoadBalancerCompiler.takesNewFlows(lb, $0, isDown: held.contains) }
                if healthy[lb.vip] == nil { order.append(lb.vip) }
                healthy[lb.vip] = (healthy[lb.vip] ?? false) || live
            }
        }
        return order.map { ServedVIP(address: $0, healthy: healthy[$0]!) }
    }
}

extension Dataplane {
    /// The VIPs the running config serves on its attached interfaces (empty: nothing
    /// applied), with their health as the health tables hold it now.
    public func servedVIPs() throws(DataplaneError) -> [ServedVIP] {
        guard let (state, config) = try running() else { return [] }
        return ServedVIP.of(config, attached: Set(state.interfaces.map(\.name)), down: downBackends(state))
    }
}

/// What `drain` found.
public enum DrainOutcome: Sendable, Equatable {
    /// The running agent answered: it announces nothing now (drain), or announces again
    /// (undo).
    case agentAnswered
    /// No agent runs here: the mark stays, and an agent that starts obeys it.
    case noAgent
}

extension Dataplane {
    /// Whether the node is drained (`drain` marked it, and no undo since).
    public var drained: Bool { root.marked(root.drainMark) }

    /// Drains the node (`on`) or undoes it: puts the pin root's drain mark or takes it
    /// away, then waits up to `seconds` for a running agent to answer (it withdraws every
    /// announcement, or makes them again). The programs keep serving either way. Throws
    /// when the agent did not answer in time (the mark stays as asked).
    public func drain(_ on: Bool, wait seconds: Double) throws(DataplaneError) -> DrainOutcome {
        do {
            try root.create()
            try root.mark(root.drainMark, on)
        } catch {
            throw .kernel(error)
        }
        let start = ContinuousClock.now
        while root.agentRuns {
            if root.marked(root.withdrawnMark) == on { return .agentAnswered }
            guard ContinuousClock.now - start < .milliseconds(Int64(seconds * 1000)) else {
                throw .state("the agent did not \(on ? "withdraw its announcements" : "announce again") within \(seconds) s; its log says why (the node is marked \(on ? "drained" : "undrained"))")
            }
            usleep(20_000)
        }
        return .noAgent
    }
}
