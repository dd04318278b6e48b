import CXDPCtlABI

/// An interface's NAT rules as the data path reads them (xdpctl_abi.h, "NAT and the
/// connection table").
public struct NATTables: Sendable {
    /// dp_nat_snat entries: entry 0 the header (its count), then one per SNAT rule and
    /// src prefix, in file order.
    public var snat: [dp_nat_snat]
    /// dp_nat_dnat: the public endpoint to the target.
    public var dnat: [(key: dp_lb_endpoint, value: dp_nat_dnat)]
}

public enum NATCompiler {
    /// Counter-slot names of an interface's NAT rules, DNAT first, in file order.
    public static func ruleNames(_ nat: NAT?) -> [String] {
        (nat?.dnat.map(\.name) ?? []) + (nat?.snat.map(\.name) ?? [])
    }

    /// The tables of `nat` with counter slots `slots`. `addresses`: the interface's own
    /// addresses, the source of SNAT rules without to_address (the first of each family);
    /// nil when unknown (validate: such rules get the unspecified address).
    public static func compile(_ nat: NAT, slots: [String: UInt32], addresses: [IPAddress]?) throws(CapacityError) -> NATTables {
        var snat = [dp_nat_snat()]
        for rule in nat.snat {
            for prefix in rule.src {
                let own = addresses.map { $0.first { $0.family == prefix.family } } ?? IPAddress(family: prefix.family, words: [0, 0, 0, 0])
                guard let to = rule.toAddress ?? own else {
                    throw CapacityError(message: "SNAT rule \"\(rule.name)\" has no to_address and the interface has no \(prefix.family == .ipv4 ? "IPv4" : "IPv6") address to masquerade as (for src \(prefix)); expected an address on the interface or a to_address")
                }
                var e = dp_nat_snat()
                e.rule = slots[rule.name] ?? 0
                e.mask = (0..<4).map { IPPrefix.mask(word: $0, length: prefix.length, family: prefix.family) }.tuple
                e.value = (0..<4).map { prefix.address.words[$0] & IPPrefix.mask(word: $0, length: prefix.length, family: prefix.family) }.tuple
                e.to = to.tuple
                e.port_lo = rule.portRange.low
                e.port_hi = rule.portRange.high
                e.family = UInt8(prefix.family.rawValue)
                snat.append(e)
            }
        }
        guard snat.count - 1 <= DP_NAT_MAX_SNAT else {
            throw CapacityError(message: "the SNAT rules expand to \(snat.count - 1) entries (one per src prefix); at most \(DP_NAT_MAX_SNAT) fit")
        }
        guard nat.dnat.count <= DP_NAT_MAX_DNAT else {
            throw CapacityError(message: "\(nat.dnat.count) DNAT rules; at most \(DP_NAT_MAX_DNAT) fit")
        }
        snat[0].count = UInt32(snat.count - 1)
        let dnat = nat.dnat.map { rule in
            var target = dp_nat_dnat()
            target.to = rule.toAddress.tuple
            target.to_port = rule.toPort
            target.rule = slots[rule.name] ?? 0
            return (LoadBalancerCompiler.endpoint(rule.dst, rule.dstPort, rule.proto), target)
        }
        return NATTables(snat: snat, dnat: dnat)
    }
}

extension [UInt32] {
    /// Four words as a C array field takes them.
    var tuple: (UInt32, UInt32, UInt32, UInt32) { (self[0], self[1], self[2], self[3]) }
}
