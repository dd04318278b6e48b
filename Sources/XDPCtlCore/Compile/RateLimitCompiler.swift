import CXDPCtlABI

/// Compiles an interface's rate limits into the contents of one dp_rl inner map: a
/// header, then one entry per match box in file order, each carrying its limit's bucket
/// parameters (see the rate-limit section of xdpctl_abi.h).
public enum RateLimitCompiler {
    /// Entries a table holds after its header.
    public static let capacity = Int(DP_RL_MAX_ENTRIES)

    /// `slots`: the bucket and counter slot of each limit, by name.
    public static func compile(_ limits: [RateLimit], slots: [String: UInt32]) throws(CapacityError) -> [dp_rl_entry] {
        var entries = [dp_rl_entry()]
        for limit in limits {
            guard let slot = slots[limit.name] else { preconditionFailure("no slot for rate limit \(limit.name)") }
            var e = dp_rl_entry()
            e.slot = slot
            e.scope = UInt8(limit.per == .source ? DP_RL_PER_SOURCE.rawValue : DP_RL_PER_RULE.rawValue)
            e.prefix_v4 = UInt8(limit.sourceIPv4Prefix)
            e.prefix_v6 = UInt8(limit.sourceIPv6Prefix)
            let flags = limit.tcpFlags.reduce(UInt8(0)) { $0 | $1.bit }
            (e.tcp_flags_mask, e.tcp_flags_value) = (flags, flags)
            if let pps = limit.packetsPerSecond {
                e.pkt_cost = max(1, timeUnitsPerSecond / pps)
                e.pkt_window = window(burst: limit.burstPackets ?? defaultBurst(pps), cost: e.pkt_cost, shift: 0)
            }
            if let bps = limit.bytesPerSecond {
                e.byte_cost = max(1, (timeUnitsPerSecond << UInt64(DP_RL_BYTE_BITS)) / bps)
                e.byte_window = window(burst: limit.burstBytes ?? defaultBurst(bps), cost: e.byte_cost, shift: UInt64(DP_RL_BYTE_BITS))
            }
            for box in Boxes.expand(src: limit.src, dst: limit.dst, proto: limit.proto, srcPorts: limit.srcPorts, dstPorts: limit.dstPorts) {
                withUnsafeMutableBytes(of: &e.lo) { raw in for (i, v) in box.lo.enumerated() { raw.storeBytes(of: v, toByteOffset: i * 4, as: UInt32.self) } }
                withUnsafeMutableBytes(of: &e.hi) { raw in for (i, v) in box.hi.enumerated() { raw.storeBytes(of: v, toByteOffset: i * 4, as: UInt32.self) } }
                entries.append(e)
            }
        }
        guard entries.count - 1 <= capacity else {
            throw CapacityError(message: "the rate limits expand to \(entries.count - 1) match entries (one per combination of their src, dst and port lists); at most \(capacity) fit")
        }
        entries[0].count = UInt32(entries.count - 1)
        return entries
    }

    /// The bucket clock's units (2^-4 ns) in a second.
    static let timeUnitsPerSecond = UInt64(1_000_000_000) << UInt64(DP_RL_TIME_BITS)

    /// Time a full bucket spans, in clock units: `burst` costs (scaled down by `shift`),
    /// bounded so the data path cannot overflow.
    static func window(burst: UInt64, cost: UInt64, shift: UInt64) -> UInt64 {
        let (high, low) = burst.multipliedFullWidth(by: cost)
        guard high >> shift == 0 else { return 1 << 62 }
        let value = shift == 0 ? low : high << (64 - shift) | low >> shift
        return min(value, 1 << 62)
    }

    /// Without a burst, a bucket holds a tenth of a second of the rate (at least one).
    static func defaultBurst(_ rate: UInt64) -> UInt64 { max(1, rate / 10) }
}

extension TCPFlag {
    /// The flag's bit in the TCP header's flags byte.
    public var bit: UInt8 {
        switch self {
        case .fin: 0x01
        case .syn: 0x02
        case .rst: 0x04
        case .psh: 0x08
        case .ack: 0x10
        case .urg: 0x20
        case .ece: 0x40
        case .cwr: 0x80
        }
    }
}
