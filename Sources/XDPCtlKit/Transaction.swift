import CXDPCtlABI
import XDPCtlBPF
import XDPCtlCore

/// Runs an ApplyPlan as one transaction: build every interface's new tables (and
/// programs) where no packet reads them, prepare the state they read, stage each
/// interface's tables in its unused slot and flip its root, attach, record; on any
/// failure before the record, roll everything back, here and only here. Then retire
/// what only the old generations used, and detach the interfaces the file no longer
/// names.
struct Transaction {
    let root: PinRoot
    let plan: ApplyPlan
    let stages: [InterfaceStage]
    let programs: ProgramInstaller
    /// The features, in the order they are staged and prepared.
    let installers: [any Installer]
    let replyPorts: ReplyPorts

    init(root: PinRoot, plan: ApplyPlan, preloads: [String: Preload], attaches: Bool) {
        self.root = root
        self.plan = plan
        stages = plan.interfaces.map { p in
            let stage = InterfaceStage(p, dir: root.interface(p.config.name))
            stage.preload = preloads[p.config.name]
            return stage
        }
        programs = ProgramInstaller(root: root, attaches: attaches)
        installers = [FirewallInstaller(root: root), RateLimitInstaller(root: root), BalancerInstaller(root: root), NATInstaller(root: root)]
        replyPorts = ReplyPorts(root: root)
    }

    /// Runs the plan; `record` writes the state (the last step that can roll back). The
    /// journal is pinned first and removed once the kernel and the state agree again:
    /// after the retirement, or after a roll-back. A kill in between leaves it, and the
    /// next command recovers (Dataplane.recoverInterruptedApply). A journal left before
    /// (this is that recovery) stays after a roll-back, which puts back what ran before.
    func run(record: ([InterfaceStage]) throws(BPFError) -> Void) throws(DataplaneError) {
        var wrotePorts = false
        let recovering = root.journalLeft
        do throws(BPFError) {
            try root.beginJournal()
            for stage in stages {
                try programs.choose(stage)
                for installer in installers { stage.tables.merge(try installer.build(stage)) { $1 } }
                try programs.load(stage)
            }
            try replyPorts.write(plan.replyPorts.union(plan.oldReplyPorts))
            wrotePorts = true
            for stage in stages {
                stage.prepared = true
                for installer in installers { try installer.prepare(stage) }
            }
            for stage in stages {
                let maps = stage.maps!
                stage.flipped = true
                try maps.stage(stage.tables, slot: stage.plan.slot)
                try maps.store(slot: stage.plan.slot, tables: stage.tables.keys, flags: stage.plan.natPeers ? DP_GEN_NAT_PEERS.rawValue : 0)
            }
            // One wait for every interface's flip: the old slots are not reused before it.
            try stages.last?.maps?.waitForReaders()
            for stage in stages { try programs.attach(stage) }
            try record(stages)
        } catch {
            rollBack(replyPorts: wrotePorts)
            if !recovering { root.endJournal() }
            throw .kernel(error)
        }
        do { try retire() } catch { throw .kernel(error) }
        root.endJournal()
    }

    /// Puts back what the running generations read, in the reverse order of the steps:
    /// the old program first, so no packet meets a new program without its generation.
    private func rollBack(replyPorts wrotePorts: Bool) {
        for stage in stages.reversed() {
            programs.undoAttach(stage)
            if stage.flipped, let maps = stage.maps {
                try? maps.restore(stage.previousWord)
                try? maps.clear(slot: stage.plan.slot)
            }
            if stage.prepared { for installer in installers.reversed() { installer.undo(stage) } }
            programs.undo(stage)
        }
        if wrotePorts { try? replyPorts.write(plan.oldReplyPorts) }
    }

    private func retire() throws(BPFError) {
        for stage in stages {
            try programs.retire(stage)
            for installer in installers { try installer.retire(stage) }
        }
        try replyPorts.write(plan.replyPorts)
        for gone in plan.detach { try Dataplane.detach(gone, root: root) }
    }
}
