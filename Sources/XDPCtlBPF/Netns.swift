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

    /// The driver of an interface in the current thread's network namespace, as ethtool
    /// names it ("veth", ...), or nil when it cannot be asked.
    public static func driver(of name: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 64)
        guard xdpctl_link_driver(name, &buffer, buffer.count) == 0 else { return nil }
        return text(buffer)
    }

    /// The ifindex of a veth's peer (in the peer's network namespace); nil for an
    /// interface that is not a veth, or cannot be asked.
    public static func vethPeer(of name: String) -> Int32? {
        let peer = xdpctl_veth_peer(name)
        return peer > 0 ? peer : nil
    }

    /// Whether an interface receives with GRO and sends with TX checksum offload; nil
    /// when it cannot be asked.
    public static func offloads(of name: String) -> (gro: Bool, txChecksum: Bool)? {
        let bits = xdpctl_offloads(name)
        return bits < 0 ? nil : (bits & 1 != 0, bits & 2 != 0)
    }

    /// The interface with index `ifindex` in the current thread's network namespace.
    public static func name(of ifindex: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(IF_NAMESIZE))
        guard if_indextoname(UInt32(bitPattern: ifindex), &buffer) != nil else { return nil }
        return text(buffer)
    }

    /// A NUL-terminated C buffer as a string.
    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The id the current thread's network namespace gives the namespace of interface
    /// `ifindex`'s link peer (a veth's other end): nil when the peer is in this one.
    public static func linkNetnsID(of ifindex: Int32) -> Int32? {
        let id = xdpctl_link_netnsid(ifindex)
        return id >= 0 ? id : nil
    }

    /// The id the current thread's network namespace gives namespace `name` (from `ip
    /// netns add`), or nil when it gives none.
    public static func id(of name: String) -> Int32? {
        guard !name.contains("/") else { return nil }
        let id = xdpctl_netnsid_of("/run/netns/\(name)")
        return id >= 0 ? id : nil
    }

    /// The network namespaces `ip netns` names (/run/netns).
    public static func named() -> [String] {
        (PinRoot.entries(of: "/run/netns") ?? []).sorted()
    }

    /// The addresses of an interface in the current thread's network namespace, as
    /// getifaddrs lists them, without IPv6 link-local ones: (family 4 or 6, network-order
    /// bytes).
    public static func addresses(of name: String) -> [(family: Int, bytes: [UInt8])] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var out: [(family: Int, bytes: [UInt8])] = []
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let sa = entry.pointee.ifa_addr, String(cString: entry.pointee.ifa_name) == name else { continue }
            switch Int32(sa.pointee.sa_family) {
            case AF_INET:
                let a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                out.append((4, withUnsafeBytes(of: a) { Array($0) }))
            case AF_INET6:
                let a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                let bytes = withUnsafeBytes(of: a) { Array($0) }
                if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 { continue } // fe80::/10
                out.append((6, bytes))
            default: continue
            }
        }
        return out
    }
}
