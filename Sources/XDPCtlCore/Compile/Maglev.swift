/// Maglev consistent hashing (Eisenbud et al., NSDI 2016) with weights: the lookup table
/// a load balancer indexes with a flow's hash to pick a backend.
///
/// Each backend walks its own permutation of the table (offset and skip from two hashes
/// of its identity) and claims the next free entry on each of its turns. Turns are dealt
/// in proportion to weight: every round, a backend gains its weight in credit and takes a
/// turn per `maxWeight` of credit, so its share of entries follows its share of the
/// weight to within a couple of entries. Backends are visited in the order of their
/// identities, not of the config, and the hash is fixed, so every node with the same
/// backends builds the same table.
public enum Maglev {
    /// The default table size: prime, so every skip visits every entry.
    public static let defaultTableSize = 65537

    public struct Backend: Sendable, Hashable {
        /// Identity bytes (address and port); the permutation depends on nothing else.
        public var key: [UInt8]
        public var weight: UInt32
        public init(key: [UInt8], weight: UInt32) {
            self.key = key
            self.weight = weight
        }
    }

    /// Entry i names the backend (an index into `backends`) for flows hashing to i.
    /// Empty when no backend has weight. `size` must be prime.
    public static func table(_ backends: [Backend], size: Int = defaultTableSize) -> [UInt32] {
        precondition(isPrime(size), "the Maglev table size must be prime")
        let live = backends.indices.filter { backends[$0].weight > 0 }.sorted { backends[$0].key.lexicographicallyPrecedes(backends[$1].key) }
        guard !live.isEmpty else { return [] }
        let m = UInt64(size)
        let offset = live.map { hash(backends[$0].key, seed: 0x6d61_676c_6576_3031) % m }
        let skip = live.map { hash(backends[$0].key, seed: 0x6d61_676c_6576_3032) % (m - 1) + 1 }
        let maxWeight = UInt64(live.map { backends[$0].weight }.max()!)
        var next = [UInt64](repeating: 0, count: live.count)
        var credit = [UInt64](repeating: 0, count: live.count)
        var entries = [UInt32](repeating: .max, count: size)
        var filled = 0
        while true {
            for (i, b) in live.enumerated() {
                credit[i] += UInt64(backends[b].weight)
                while credit[i] >= maxWeight {
                    credit[i] -= maxWeight
                    var c = (offset[i] + next[i] * skip[i]) % m
                    while entries[Int(c)] != .max {
                        next[i] += 1
                        c = (offset[i] + next[i] * skip[i]) % m
                    }
                    entries[Int(c)] = UInt32(b)
                    next[i] += 1
                    filled += 1
                    if filled == size { return entries }
                }
            }
        }
    }

    /// 64-bit FNV-1a, finished with a SplitMix64 mix: stable across machines and releases.
    static func hash(_ bytes: [UInt8], seed: UInt64) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        h = (h ^ (h >> 30)) &* 0xbf58_476d_1ce4_e5b9
        h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
        return h ^ (h >> 31)
    }

    public static func isPrime(_ n: Int) -> Bool {
        guard n >= 2 else { return false }
        var d = 2
        while d * d <= n {
            if n % d == 0 { return false }
            d += 1
        }
        return true
    }
}

extension LoadBalancer.Backend {
    /// The backend's identity for Maglev: family, address words and port.
    public var maglevKey: [UInt8] {
        var key = [UInt8(address.family.rawValue)]
        for w in address.words { key += withUnsafeBytes(of: w.bigEndian, Array.init) }
        return key + withUnsafeBytes(of: port.bigEndian, Array.init)
    }
}

/// The Maglev tables built last, one per load balancer with its input: a health change
/// rebuilds only the table whose backends changed (at 65,537 entries a table takes tens
/// of milliseconds unoptimized, and every millisecond sends new flows to a dead backend).
public final class MaglevCache {
    private var tables: [String: (backends: [Maglev.Backend], size: Int, table: [UInt32])] = [:]

    public init() {}

    /// Maglev.table(backends, size), kept under `name` for the next call.
    public func table(_ name: String, _ backends: [Maglev.Backend], size: Int) -> [UInt32] {
        if let kept = tables[name], kept.backends == backends, kept.size == size { return kept.table }
        let table = Maglev.table(backends, size: size)
        tables[name] = (backends, size, table)
        return table
    }

    /// Forgets the tables of load balancers not in `names`.
    public func keep(_ names: Set<String>) {
        tables = tables.filter { names.contains($0.key) }
    }
}
