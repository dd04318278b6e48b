import CXDPCtlShims
import Glibc

public enum Netns {
    /// Moves the calling thread into network namespace `name` (from `ip netns add`).
    /// The mount namespace is kept, so pins stay on the host's bpffs. Call it on the
    /// thread that then does every netns-sensitive call (the main thread of `xdpctl`).
    public static func enter(_ name: String) throws(BPFError) {
        guard !name.isEmpty, !name.contains("/") else { throw BPFError(.enterNetns(name), errno: EINVAL) }
        try check(xdpctl_setns("/run/netns/\(name)"), .enterNetns(name))
    }

    /// The ifindex of an interface in the current thread's network namespace, or nil.
    public static func ifindex(of name: String) -> Int32? {
        let index = if_nametoindex(name)
        return index == 0 ? nil : Int32(index)
    }
}
