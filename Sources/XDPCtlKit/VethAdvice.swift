import XDPCtlBPF
import XDPCtlCore

/// What a veth's peer needs when the data plane forwards through the veth with XDP
/// (docs/config.md, "Testing on veth pairs"): a frame redirected out of the veth reaches
/// its peer only when the peer receives with GRO on (or runs an XDP program), and a frame
/// the peer sends with TX checksum offload on carries a partial TCP/UDP checksum, which a
/// rewritten, redirected frame keeps wrong. Physical NICs need neither. The peer is
/// looked for in the command's network namespace and the ones `ip netns` names.
struct VethPeer {
    var name: String
    /// Its network namespace's name (nil: the command's, which has none).
    var netns: String?
    var gro: Bool
    var txChecksum: Bool
    var xdp: Bool

    /// The setting it lacks, as the ethtool arguments that give it ("" when none).
    var fix: String {
        ((gro || xdp ? [] : ["gro on"]) + (txChecksum ? ["tx off"] : [])).joined(separator: " ")
    }

    /// The peer of veth `name` (index `ifindex` here), or nil when it is not found: in
    /// the namespace the command works in (`netns`, nil when unnamed), or in the named
    /// namespace whose id this one gives the peer's (indexes alone repeat across
    /// namespaces, and would match unrelated veths).
    static func of(_ name: String, ifindex: Int32, netns here: String?) -> VethPeer? {
        guard let peer = Netns.vethPeer(of: name) else { return nil }
        var elsewhere: String?
        if let id = Netns.linkNetnsID(of: ifindex) {
            guard let named = Netns.named().first(where: { Netns.id(of: $0) == id }) else { return nil }
            elsewhere = named
        }
        // Another namespace is entered on a thread of its own, which ends with it.
        return Concurrently { [elsewhere] () -> VethPeer? in
            if let ns = elsewhere, (try? Netns.enter(ns)) == nil { return nil }
            guard let candidate = Netns.name(of: peer), elsewhere != nil || candidate != name,
                  let offloads = Netns.offloads(of: candidate) else { return nil }
            return VethPeer(name: candidate, netns: elsewhere ?? here, gro: offloads.gro, txChecksum: offloads.txChecksum,
                            xdp: XDPLink.program(on: peer) != nil)
        }.value
    }
}

extension Dataplane {
    /// For the interfaces `names` (of a file with load balancers or NAT): each veth whose
    /// peer lacks a setting XDP forwarding needs, by name, as advice naming the peer, its
    /// namespace and the command that gives the setting.
    static func vethAdvice(_ names: [String], netns: String?) -> [String: String] {
        var out: [String: String] = [:]
        for name in names where Netns.driver(of: name) == "veth" {
            guard let ifindex = Netns.ifindex(of: name) else { continue }
            guard let peer = VethPeer.of(name, ifindex: ifindex, netns: netns) else {
                out[name] = "\(name) is a veth whose peer is neither here nor in a network namespace `ip netns` names: it must receive with GRO on and send with TX checksum offload off (ethtool -K PEER gro on tx off), or what the data plane forwards through \(name) is lost"
                continue
            }
            guard !peer.fix.isEmpty else { continue }
            let needs = [(peer.gro || peer.xdp) ? nil : "has GRO off (frames forwarded out of \(name) are dropped)",
                         peer.txChecksum ? "sends with TX checksum offload on (its TCP/UDP frames, rewritten and forwarded, leave with wrong checksums)" : nil]
            let place = peer.netns.map { " (network namespace \($0))" } ?? ""
            let command = (peer.netns.map { "ip netns exec \($0) " } ?? "") + "ethtool -K \(peer.name) \(peer.fix)"
            out[name] = "\(name) is a veth whose peer \(peer.name)\(place) \(needs.compactMap { $0 }.joined(separator: " and ")); run: \(command)"
        }
        return out
    }

    /// vethAdvice as warnings at the interfaces' places in `config`, when it has load
    /// balancers or NAT.
    static func vethWarnings(_ config: Config, netns: String?) -> [ConfigError] {
        guard config.interfaces.contains(where: { !$0.loadBalancers.isEmpty || $0.nat != nil }) else { return [] }
        let advice = vethAdvice(config.interfaces.map(\.name), netns: netns)
        return config.interfaces.enumerated().compactMap { i, iface in
            advice[iface.name].map { ConfigError(path: "interfaces[\(i)].name", message: $0) }
        }
    }
}
