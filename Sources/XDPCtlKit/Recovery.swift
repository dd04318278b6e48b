import XDPCtlBPF
import XDPCtlCore

extension Dataplane {
    /// Makes the kernel and the state agree again after an apply that began and never
    /// finished: it was killed, or the machine went down, and its journal is still pinned
    /// (PinRoot.beginJournal). Every command that reads the state calls this first.
    ///
    /// Whatever step the apply reached, the recorded config runs afterwards: the old one
    /// when the kill came before the state was written, the new one after. It is applied
    /// again with every interface's program loaded anew and swapped in through its link,
    /// because the pins may name a program the apply loaded and never attached, and the
    /// running program may already read the new generation's tables. Interfaces the
    /// record does not name (attached by the interrupted apply) are detached; with no
    /// record at all, everything goes, as after `down`.
    func recoverInterruptedApply() throws(DataplaneError) {
        guard root.journalLeft else { return }
        let lock = try lockRoot()
        defer { withExtendedLifetime(lock) {} }
        guard root.journalLeft else { return } // another command recovered meanwhile
        guard let recorded = try state() else {
            do {
                for name in root.interfaceNames() { try Self.detach(name, root: root) }
                try root.removeTree(root.path)
            } catch { throw .kernel(error) }
            onRecovery?("an apply under \(root.path) did not finish, and none had before it: everything it attached is removed")
            return
        }
        if let recordedNetns = recorded.netns, let netns, netns != recordedNetns {
            throw .state("an apply under \(root.path) did not finish; recover it in the namespace it ran in: xdpctl status --netns \(recordedNetns)")
        }
        try enterRecordedNetns(recorded)
        let named = Set(recorded.interfaces.map(\.name))
        do {
            for name in root.interfaceNames() where !named.contains(name) { try Self.detach(name, root: root) }
        } catch { throw .kernel(error) }
        let result = try apply(recorded.configText, patching: true, reload: true)
        root.endJournal()
        onRecovery?("an apply under \(root.path) did not finish; the config recorded before it runs again, as generation \(result.generation)")
    }
}
