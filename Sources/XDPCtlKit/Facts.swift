import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

extension Dataplane {
    /// The indexes of the interfaces `config` names, in the namespace the commands work in.
    /// In a private load, a missing interface stands for the loopback.
    func ifindexes(_ config: Config) -> [String: Int32] {
        var out: [String: Int32] = [:]
        for iface in config.interfaces { out[iface.name] = Netns.ifindex(of: iface.name) ?? (attaches ? nil : 1) }
        return out
    }

    /// The interfaces of `config` that are veths.
    func veths(_ config: Config) -> Set<String> {
        Set(config.interfaces.map(\.name).filter { Netns.driver(of: $0) == "veth" })
    }

    /// The addresses of the interfaces whose SNAT rules masquerade (have no to_address).
    func addresses(_ config: Config) -> [String: [IPAddress]] {
        var out: [String: [IPAddress]] = [:]
        for iface in config.interfaces where iface.nat?.snat.contains(where: { $0.toAddress == nil }) == true {
            out[iface.name] = Netns.addresses(of: iface.name).map { a in
                IPAddress(family: a.family == 4 ? .ipv4 : .ipv6, words: (0..<4).map { w in
                    w * 4 + 4 <= a.bytes.count ? a.bytes[w * 4..<w * 4 + 4].reduce(0) { $0 << 8 | UInt32($1) } : 0
                })
            }
        }
        return out
    }

    /// What the kernel says about the interfaces `state` records: whether their links are
    /// intact, and their running generations (ApplyPlanner decides from these).
    func facts(_ state: DataplaneState?) -> [String: InterfaceFacts] {
        var out: [String: InterfaceFacts] = [:]
        for iface in state?.interfaces ?? [] {
            let dir = root.interface(iface.name)
            guard let maps = (try? currentMaps(of: iface.name)) ?? nil else {
                // A program of an older build: the next apply loads this build's. ABI 3
                // to 5 have a root of this shape; ABI 2 reads the rate-limit and
                // load-balancer slot its firewall header names.
                let rootWord = (try? BPFMap.open(pinned: "\(dir)/\(DP_MAP_GEN)").lookup(UInt32(0), as: UInt32.self)) ?? nil
                let slot = rootWord.map { $0 == 0 ? nil : $0 & DP_GEN_SLOT } ?? legacySlot(iface.name)
                out[iface.name] = InterfaceFacts(linkIntact: linkIntact(iface), runningSlot: slot, hasRoot: false, firewallCapacity: 0)
                continue
            }
            let running = ((try? maps.running()) ?? nil).flatMap { $0.slot < DP_GEN_SLOTS ? $0 : nil }
            let table = running.flatMap { r in (try? maps.table(.firewall, slot: r.slot)) ?? nil }
            out[iface.name] = InterfaceFacts(linkIntact: linkIntact(iface), runningSlot: running?.slot, hasRoot: true,
                                             firewallCapacity: table.map { Self.firewallCapacity(of: $0) ?? 0 })
        }
        return out
    }

    /// The generation maps of interface `name`'s program when it is of this build's
    /// layout; nil for an older one (a full apply replaces it): ABI 2 has no generation
    /// root, ABI 5 no VIP filter (it filtered by port alone). The running program must
    /// read the pinned filter itself: an apply that failed after loading a new program
    /// leaves that program's pins beside the old one.
    func currentMaps(of name: String) throws(BPFError) -> GenerationMaps? {
        let dir = root.interface(name), filter = "\(dir)/\(DP_MAP_LB_VFILTER)"
        guard access(filter, F_OK) == 0 else { return nil }
        if access(root.link(name), F_OK) == 0, !(try XDPLink.mapIDs(pinPath: root.link(name))).contains(try BPFMap.open(pinned: filter).info().id) {
            return nil
        }
        return try GenerationMaps.pinned(in: dir)
    }

    /// The dp_rl slot an ABI 2 program reads: its firewall table header's base.
    private func legacySlot(_ name: String) -> UInt32? {
        guard let table = try? BPFMap.open(pinned: root.map("dp_fw", of: name)).innerMap(at: 0),
              let base = try? table.withMappedValues(1, as: dp_fw_node.self, writable: false, { $0[0].base }) else { return nil }
        return base < DP_GEN_SLOTS ? base : nil
    }

    /// The interface's pinned link still runs a program on the ifindex it was attached to.
    func linkIntact(_ iface: InterfaceState) -> Bool {
        guard let link = try? XDPLink.info(pinPath: root.link(iface.name)) else { return false }
        return link.programID != 0 && link.ifindex == UInt32(iface.ifindex)
    }
}
