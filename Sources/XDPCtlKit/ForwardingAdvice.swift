import Glibc
import XDPCtlCore

/// Load balancing and NAT send packets on with the FIB's next hop (bpf_fib_lookup), and
/// the FIB gives none for a packet that arrived on an interface that does not forward
/// (BPF_FIB_LKUP_RET_FWD_DISABLED): with forwarding off, every balanced or translated
/// packet goes up to the stack, which drops it. apply warns, naming the sysctl.
extension Dataplane {
    /// A warning for each interface of `config` with load balancers or NAT whose
    /// forwarding is off for a family they use. Reads /proc/sys/net, which shows the
    /// network namespace of the calling thread (the data plane's).
    static func forwardingWarnings(_ config: Config) -> [ConfigError] {
        config.interfaces.enumerated().compactMap { i, iface in
            var families = Set(iface.loadBalancers.map(\.vip.family))
            if let nat = iface.nat {
                families.formUnion(nat.dnat.map(\.dst.family))
                families.formUnion(nat.snat.flatMap { $0.src.map(\.address.family) })
            }
            let off = families.sorted().compactMap { family -> String? in
                let v = family == .ipv4 ? "ipv4" : "ipv6"
                return Self.readSysctl("/proc/sys/net/\(v)/conf/\(iface.name)/forwarding") == "0" ? "net.\(v).conf.\(iface.name).forwarding=1" : nil
            }
            guard !off.isEmpty else { return nil }
            return ConfigError(path: "interfaces[\(i)].name", message: "IP forwarding is off on \(iface.name); its load balancers and NAT forward nothing without it (the XDP program's next-hop lookups fail): sysctl -w \(off.joined(separator: " "))")
        }
    }

    /// The first line of a /proc/sys file; nil when it cannot be read.
    private static func readSysctl(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 64)
        guard fgets(&line, 64, f) != nil else { return nil }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(whereSeparator: \.isWhitespace).first.map(String.init)
    }
}
