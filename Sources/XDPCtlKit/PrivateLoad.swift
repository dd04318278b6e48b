import Glibc
import XDPCtlBPF

extension Dataplane {
    /// Loads `text` as apply would, but under a pin root of its own beside this one and
    /// with nothing attached: each interface's XDP program is pinned (PinRoot.program)
    /// instead of linked, and runs only when a command runs it (replay -f). The file's
    /// interfaces need not exist: a missing one stands for the loopback, where
    /// BPF_PROG_TEST_RUN's packets arrive. The loading process holds the root's owner
    /// lock while it lives; `unload()` removes it all, and a root whose owner is gone (a
    /// killed command) is removed by the next private load.
    public func loadPrivately(_ text: String) throws(DataplaneError) -> Dataplane {
        removeAbandonedPrivateRoots()
        let copy = try Dataplane(pinRoot: "\(root.path)\(Self.privateSuffix)\(getpid())", netns: nil)
        copy.netns = netns // the namespace this process already entered
        copy.attaches = false
        do throws(DataplaneError) {
            do throws(BPFError) {
                try copy.root.create()
                copy.ownerLock = try copy.root.lockOwner(create: true)
            } catch {
                throw .kernel(error)
            }
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
        ownerLock = nil
    }

    private static let privateSuffix = "-private-"

    /// Private roots of this pin root whose owner lock nobody holds. (The lock, not the
    /// pid in the name: bpffs may be shared by processes of other pid namespaces.)
    private func removeAbandonedPrivateRoots() {
        let slash = root.path.lastIndex(of: "/") ?? root.path.startIndex
        let parent = root.path[..<slash].isEmpty ? "/" : String(root.path[..<slash])
        let prefix = String(root.path[root.path.index(after: slash)...]) + Self.privateSuffix
        for name in PinRoot.entries(of: parent) ?? [] where name.hasPrefix(prefix) {
            let other = PinRoot("\(parent)/\(name)")
            guard let held = (try? other.lockOwner(create: false)) ?? nil else { continue } // in use, or not a private root
            try? root.removeTree(other.path)
            withExtendedLifetime(held) {}
        }
    }
}
