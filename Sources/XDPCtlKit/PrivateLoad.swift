import Glibc
import XDPCtlBPF

extension Dataplane {
    /// Loads `text` as apply would, but under a pin root of its own beside this one and
    /// with nothing attached: each interface's XDP program is pinned (PinRoot.program)
    /// instead of linked, and runs only when a command runs it (replay -f). The file's
    /// interfaces need not exist: a missing one stands for the loopback, where
    /// BPF_PROG_TEST_RUN's packets arrive. `unload()` removes it all; a private root a
    /// killed command left is removed by the next one.
    public func loadPrivately(_ text: String) throws(DataplaneError) -> Dataplane {
        removeAbandonedPrivateRoots()
        let copy = try Dataplane(pinRoot: "\(root.path)\(Self.privateSuffix)\(getpid())", netns: nil)
        copy.netns = netns // the namespace this process already entered
        copy.attaches = false
        do {
            _ = try copy.apply(text)
        } catch {
            copy.unload()
            throw error
        }
        return copy
    }

    /// Removes a private load's pins; its programs and maps go with the last descriptor.
    public func unload() {
        try? root.removeTree(root.path)
    }

    private static let privateSuffix = "-private-"

    /// Private roots of this pin root whose command is gone.
    private func removeAbandonedPrivateRoots() {
        let slash = root.path.lastIndex(of: "/") ?? root.path.startIndex
        let parent = root.path[..<slash].isEmpty ? "/" : String(root.path[..<slash])
        let prefix = String(root.path[root.path.index(after: slash)...]) + Self.privateSuffix
        for name in PinRoot.entries(of: parent) ?? [] where name.hasPrefix(prefix) {
            guard let pid = pid_t(name.dropFirst(prefix.count)), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? root.removeTree("\(parent)/\(name)")
        }
    }
}
