import CLibBPF
import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

/// The data plane as the commands see it. All kernel state lives under the pin root.
public final class Dataplane {
    public let root: PinRoot
    public internal(set) var netns: String?
    var compiler = FirewallCompiler()
    /// The state reportState() read last, by the state map's id.
    var reportCache: (id: UInt32, state: DataplaneState)?
    /// The state and config `running()` read last, by the state map's id.
    var runningCache: (id: UInt32, state: DataplaneState, config: Config)?
    /// The checked backends of each interface, for the generation that names them.
    var checkedCache: [String: (generation: UInt64, checks: [String: LoadBalancer.HealthCheck])] = [:]
    /// The Maglev tables health changes built last, by interface and load balancer.
    var maglevCaches: [String: MaglevCache] = [:]
    /// Applies attach the programs; a private load (loadPrivately) pins them instead.
    var attaches = true
    /// A private load's hold on its root (PinRoot.lockOwner).
    var ownerLock: OwnedDescriptor?
    /// Seconds an apply, down or flush waits for another one that holds the pin root.
    public var lockWait: Double = 60
    /// Told when a command starts waiting for the lock (with lockWait).
    public var onLockWait: ((Double) -> Void)?
    /// Told when a command recovered an interrupted apply (recoverInterruptedApply), and how.
    public var onRecovery: ((String) -> Void)?

    /// `netns`: run against the interfaces of that network namespace (pins stay on the
    /// host's bpffs). Call on the thread that will make every other call.
    public init(pinRoot: String, netns: String?, verbose: Bool = false) throws(DataplaneError) {
        root = PinRoot(pinRoot)
        BPFLog.install(verbose: verbose)
        if let netns { try enter(netns) }
    }

    private func enter(_ name: String) throws(DataplaneError) {
        do { try Netns.enter(name) } catch { throw .kernel(error) }
        netns = name
    }

    /// Enters the namespace the last apply used when the command named none.
    func enterRecordedNetns(_ state: DataplaneState) throws(DataplaneError) {
        if netns == nil, let recorded = state.netns { try enter(recorded) }
    }

    // MARK: config

    /// Decodes and validates a config file; changes nothing.
    public static func validate(_ text: String) throws(DataplaneError) -> Config {
        do { return try ConfigDecoder.decode(text) } catch { throw .config(error) }
    }

    /// Rule sets and rate limits that do not fit the data plane's tables, found by
    /// compiling them as apply would; changes nothing.
    public static func capacityProblems(_ config: Config) -> [ConfigError] {
        // NAT rule counters are numbered across interfaces, as apply numbers them.
        let nat = ApplyPlanner.natSlots(config, nil)
        return config.interfaces.enumerated().flatMap { i, iface in
            var slots = Slots(fresh: iface)
            slots.nat = nat[iface.name]?.slots ?? [:]
            return InterfaceTables(iface, at: i, slots: slots, compiler: FirewallCompiler()).errors
        }
    }

    // MARK: state

    /// What the last apply recorded; nil when nothing is applied under the pin root.
    public func state() throws(DataplaneError) -> DataplaneState? {
        try state(config: true)
    }

    /// The state as the reports read it: every interface with its summary and its rule
    /// slots in rule-list order, without the config text. States written before format 3
    /// have neither: their config is decoded for them.
    func reportState() throws(DataplaneError) -> DataplaneState? {
        try recoverInterruptedApply()
        // The agent reads it for every scrape: at 100,000 rules decoding it takes ~15 ms.
        let id = root.stateID()
        if let id, let cached = reportCache, cached.id == id { return cached.state }
        let state = try decodedReportState()
        reportCache = id.flatMap { id in state.map { (id, $0) } }
        return state
    }

    /// reportState, for a command that needs something applied.
    func appliedState() throws(DataplaneError) -> DataplaneState {
        guard let state = try reportState() else { throw .state("nothing applied under \(root.path)") }
        return state
    }

    /// Interface `name` of `state`, or an error naming the attached ones.
    func attached(_ name: String, in state: DataplaneState) throws(DataplaneError) -> InterfaceState {
        guard let s = state.interfaces.first(where: { $0.name == name }) else {
            throw .state("\(name) is not attached under \(root.path) (attached: \(state.interfaces.map(\.name).joined(separator: ", ")))")
        }
        return s
    }

    private func decodedReportState() throws(DataplaneError) -> DataplaneState? {
        guard let state = try state(config: false) else { return nil }
        guard state.interfaces.contains(where: { $0.summary == nil }), var full = try self.state(config: true) else { return state }
        let config = try config(of: full)
        for (i, s) in full.interfaces.enumerated() {
            guard let iface = config.interfaces.first(where: { $0.name == s.name }) else { continue }
            let slots = s.slots.byName
            let names = (iface.firewall?.rules ?? []).map(\.name).filter { slots[$0] != nil }
            full.interfaces[i].summary = InterfaceSummary(iface)
            full.interfaces[i].slots = RuleSlots(names, slots: slots)
        }
        full.configText = ""
        return full
    }

    private func state(config: Bool) throws(DataplaneError) -> DataplaneState? {
        let bytes: [UInt8]?
        do { bytes = try root.readState() } catch { throw .kernel(error) }
        guard let bytes else { return nil }
        do { return try DataplaneState(encoded: bytes, config: config) } catch { throw .state(error.description) }
    }

    /// The config of a state, decoded again (it was valid when applied).
    func config(of state: DataplaneState) throws(DataplaneError) -> Config {
        do { return try ConfigDecoder.decode(state.configText) } catch { throw .state("the applied config no longer decodes: \(error)") }
    }
}
