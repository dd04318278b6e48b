import XDPCtlBPF
import XDPCtlCore

/// What a veth's peer needs when the data plane forwards through the veth with XDP
/// (docs/config.md, "Testing on veth pairs"): a frame redirected out of the veth reaches
/// its peer only when the peer receives with GRO on (or runs an XDP program), and a frame
/// the peer sends with TX checksum offload on carries a partial TCP/UDP checksum, which a
/// rewritten, redirected frame keeps wrong. Physical NICs need neither. The peer is
/// looked for in the network namespaces `ip netns` names.
struct VethPeer {
    var name: String
    /// Its network namespace's name.
    var netns: String
    var gro: Bool
    var txChecksum: Bool
    var xdp: Bool

    /// The setting it lacks, as the ethtool arguments that give it ("" when none).
    var fix: String {
        ((gro || xdp ? [] : ["gro on"]) + (txChecksum ? ["tx off"] : [])).joined(separator: " ")
    }

    /// The peer of veth `name` (index `ifindex` here), or nil when it is not found.
    static func of(_ name: String, ifindex: Int32) -> VethPeer? {
        guard let peer = Netns.vethPeer(of: name), let here = Netns.current() else { return nil }
        // Namespaces are entered on a thread of their own, which ends with them. Indexes
        // repeat across namespaces: in this one, the veth itself can look like its peer.
        return Concurrently { () -> VethPeer? in
            for ns in Netns.named() {
                guard (try? Netns.enter(ns)) != nil, let candidate = Netns.name(of: peer),
                      !(Netns.current() == here && candidate == name), Netns.driver(of: candidate) == "veth",
                      Netns.vethPeer(of: candidate) == ifindex, let offloads = Netns.offloads(of: candidate) else { continue }
                return VethPeer(name: candidate, netns: ns, gro: offloads.gro, txChecksum: offloads.txChecksum,
                                xdp: XDPLink.program(on: peer) != nil)
            }
            return nil
        }.value
    }
}

extension Dataplane {
    /// For the interfaces `names` (of a file with load balancers or NAT): each veth whose
    /// peer lacks a setting XDP forwarding needs, by name, as advice naming the peer, its
    /// namespace and the command that gives the setting.
    static func vethAdvice(_ names: [String]) -> [String: String] {
        var out: [String: String] = [:]
        for name in names where Netns.driver(of: name) == "veth" {
            guard let ifindex = Netns.ifindex(of: name) else { continue }
            guard let peer = VethPeer.of(name, ifindex: ifindex) else {
                out[name] = "\(name) is a veth whose peer is in no network namespace `ip netns` names: it must receive with GRO on and send with TX checksum offload off (ethtool -K PEER gro on tx off), or what the data plane forwards through \(name) is lost"
                continue
            }
            guard !peer.fix.isEmpty else { continue }
            let needs = [(peer.gro || peer.xdp) ? nil : "has GRO off (frames forwarded out of \(name) are dropped)",
                         peer.txChecksum ? "sends with TX checksum offload on (its TCP/UDP frames, rewritten and forwarded, leave with wrong checksums)" : nil]
            out[name] = "\(name) is a veth whose peer \(peer.name) (network namespace \(peer.netns)) \(needs.compactMap { $0 }.joined(separator: " and ")); run: ip netns exec \(peer.netns) ethtool -K \(peer.name) \(peer.fix)"
        }
        return out
    }

    /// vethAdvice as warnings at the interfaces' places in `config`, when it has load
    /// balancers or NAT.
    static func vethWarnings(_ config: Config) -> [ConfigError] {
        guard config.interfaces.contains(where: { !$0.loadBalancers.isEmpty || $0.nat != nil }) else { return [] }
        let advice = vethAdvice(config.interfaces.map(\.name))
        return config.interfaces.enumerated().compactMap { i, iface in
            advice[iface.name].map { ConfigError(path: "interfaces[\(i)].name", message: $0) }
        }
    }
}
