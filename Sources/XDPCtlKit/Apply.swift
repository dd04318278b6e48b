import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

/// What an apply did.
public struct ApplyResult: Sendable {
    public var generation: UInt64
    public var changed: Bool
    public var changes: [String]
    /// The change was made by patching the running firewall table (see Dataplane.patch).
    public var patched = false
    /// Settings that are valid but almost surely a mistake (ConfigWarnings), from a full
    /// apply (a patch or an unchanged file does not check them again).
    public var warnings: [ConfigError] = []
}

extension Dataplane {
    /// Makes the kernel match `text`. Atomic per interface: a packet sees the old rule set or
    /// the new one. A failure at any step leaves the running state as it was. With
    /// `patching`, a change inside one firewall's rule list patches the running table;
    /// without, tables that patches left with patch trees are compiled afresh even when
    /// the file is the same.
    public func apply(_ text: String, patching: Bool = true) throws(DataplaneError) -> ApplyResult {
        try recoverInterruptedApply()
        endStaleCapture()
        return try apply(text, patching: patching, reload: false)
    }

    /// apply; `reload`: load every interface's program again and skip every shortcut (the
    /// recovery of an interrupted apply, which holds the lock).
    func apply(_ text: String, patching: Bool, reload: Bool) throws(DataplaneError) -> ApplyResult {
        // The file that is running, over intact attachments: nothing to validate, compile
        // or change. (Only reads; an apply racing this one wins either way.)
        let runningID = root.stateID()
        let running = runningID == nil ? nil : try state()
        let recompile = { (s: DataplaneState) in patching ? [] : s.interfaces.filter { $0.firewallPatchTrees > 0 }.map(\.name) }
        if !reload, let running, isUnchanged(running, text), recompile(running).isEmpty {
            return ApplyResult(generation: running.generation, changed: false, changes: [])
        }
        // A change inside one firewall's rule list patches the running table.
        var lock: OwnedDescriptor?
        defer { withExtendedLifetime(lock) {} }
        if patching, !reload, let running, let edit = RuleEdit(from: running.configText, to: text) {
            lock = try lockRoot()
            // Unless another apply got in first, the state is the one just read.
            let old = root.stateID() == runningID ? running : try state()
            if let old, old.generation == running.generation, let result = try patch(old, to: text, edit) {
                return result
            }
        }
        // The running config is decoded on the other core while this one validates the
        // new file (each takes ~0.4 s at 100,000 rules).
        let runningConfig = running.map { s in Concurrently { () -> Result<Config, ConfigErrors> in
            Result { () throws(ConfigErrors) in try ConfigDecoder.decode(s.configText) } } }
        let config = try Self.validate(text)
        let warnings = ConfigWarnings.check(config)
        do { try root.create() } catch { throw .kernel(error) }
        if lock == nil && !reload { lock = try lockRoot() }

        let old = try state()
        if !reload, let old, isUnchanged(old, text), recompile(old).isEmpty {
            return ApplyResult(generation: old.generation, changed: false, changes: [])
        }
        let oldConfig = try old.map { s throws(DataplaneError) in
            // Decoded early, unless another apply got in first.
            if let running, let decoded = runningConfig?.value, running.generation == s.generation, running.configText == s.configText {
                do { return try decoded.get() } catch { throw .state("the applied config no longer decodes: \(error)") }
            }
            return try self.config(of: s)
        }
        // New interfaces' programs load on the other core while the rule sets compile.
        let preloads = preload(config, old: old)
        var planner = ApplyPlanner(config: config, netns: netns, old: old, oldConfig: oldConfig,
                                   ifindexes: ifindexes(config), facts: facts(old))
        planner.recompile = old.map(recompile) ?? []
        planner.reload = reload
        planner.compiler = compiler
        planner.addresses = addresses(config)
        planner.veths = veths(config)
        planner.downBackends = downBackends(old)
        let plan: ApplyPlan
        do { plan = try planner.plan() } catch {
            discard(preloads)
            throw .refused(error.errors)
        }
        if !reload, let old, old.netns == netns, plan.changes.isEmpty {
            discard(preloads)
            return ApplyResult(generation: old.generation, changed: false, changes: [])
        }
        try Transaction(root: root, plan: plan, preloads: preloads, attaches: attaches).run { stages throws(BPFError) in
            let interfaces = stages.map { $0.plan.state(mode: $0.mode.rawValue, capacity: $0.capacity) }
            try root.writeState(DataplaneState(generation: plan.generation, netns: netns, configText: text, interfaces: interfaces).encoded)
        }
        return ApplyResult(generation: plan.generation, changed: true, changes: plan.changes, warnings: warnings + Self.forwardingWarnings(config) + Self.vethWarnings(config, netns: netns))
    }

    /// Holds the pin root's lock until the descriptor closes, waiting up to `lockWait`
    /// seconds for another command that holds it (and telling `onLockWait` so).
    func lockRoot() throws(DataplaneError) -> OwnedDescriptor {
        do { return try root.lock(wait: lockWait) { onLockWait?(lockWait) } } catch { throw .kernel(error) }
    }

    /// The file runs as it is, on intact links, in programs of this build.
    func isUnchanged(_ old: DataplaneState, _ text: String) -> Bool {
        old.configText == text && old.netns == netns && old.interfaces.allSatisfy { iface in
            linkIntact(iface) && ((try? GenerationMaps.pinned(in: root.interface(iface.name))) ?? nil) != nil
        }
    }
}
