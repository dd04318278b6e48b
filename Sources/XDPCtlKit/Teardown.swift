import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

extension Dataplane {
    /// Detaches everything under the pin root and removes the pins. Refused while an
    /// agent serves the pin root: it would apply its file again at its next change.
    public func down() throws(DataplaneError) -> [String] {
        guard access(root.path, F_OK) == 0 else { return [] }
        if root.agentRuns {
            throw .state("an xdpctl agent serves \(root.path); stop it first (systemctl stop xdpctl, or SIGTERM), then run down; nothing was changed")
        }
        let lock = try lockRoot()
        defer { withExtendedLifetime(lock) {} }
        let names = root.interfaceNames()
        do {
            for name in names { try Self.detach(name, root: root) }
            try root.removeTree(root.path)
        } catch { throw .kernel(error) }
        return names
    }

    /// Detaches an interface's programs and removes its pins and connections.
    static func detach(_ name: String, root: PinRoot) throws(BPFError) {
        let ifindex = (try? XDPLink.info(pinPath: root.link(name)))?.ifindex
        try XDPLink.detach(pinPath: root.link(name), interface: name)
        try XDPLink.detach(pinPath: root.tcLink(name), interface: name)
        try root.removeTree(root.interface(name))
        if let ifindex, access(root.shared(DP_MAP_CT), F_OK) == 0 {
            _ = try ConnectionTable(root: root).remove { $0.ifindex == ifindex }
        }
    }
}
