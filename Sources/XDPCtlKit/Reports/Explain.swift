import XDPCtlCore

extension Dataplane {
    /// What the running config of `interface` would do with `packet`: its rule slots,
    /// and the backends its health checks hold down, as they are now.
    public func explain(_ packet: PacketKey, tcpFlags: UInt8, interface: String) throws(DataplaneError) -> Explanation {
        guard let (state, config) = try running() else { throw .state("nothing applied under \(root.path)") }
        let s = try attached(interface, in: state)
        guard let iface = config.interfaces.first(where: { $0.name == interface }) else {
            throw .state("the applied config has no interface \(interface)")
        }
        do {
            return try Explainer(iface, slots: s.slots.byName, down: downBackends(state)[interface] ?? []).explain(packet, tcpFlags: tcpFlags)
        } catch {
            throw .refused([ConfigError(path: "interfaces", message: error.message)])
        }
    }
}
