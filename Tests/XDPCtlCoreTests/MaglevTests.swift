import Testing
import XDPCtlWorkloads
@testable import XDPCtlCore

@Suite("Maglev tables")
struct MaglevTests {
    static func backends(_ n: Int, weights: (Int) -> UInt32 = { _ in 100 }) -> [Maglev.Backend] {
        (0..<n).map { i in
            let b = LoadBalancer.Backend(address: IPAddress(family: .ipv4, words: [0x0A01_0000 | UInt32(i), 0, 0, 0]), port: 8080,
                                         weight: weights(i), state: .active)
            return Maglev.Backend(key: b.maglevKey, weight: b.weight)
        }
    }

    /// The largest relative gap between a backend's share of entries and its share of weight.
    static func worstShareError(_ backends: [Maglev.Backend], _ table: [UInt32]) -> Double {
        var counts = [Int](repeating: 0, count: backends.count)
        for e in table { counts[Int(e)] += 1 }
        let total = Double(backends.reduce(0) { $0 + Int($1.weight) })
        return backends.indices.map { i in
            let want = Double(backends[i].weight) / total
            return abs(Double(counts[i]) / Double(table.count) - want) / want
        }.max()!
    }

    @Test("weights are honoured: every backend's share of entries is within 1 % of its share of weight",
          arguments: [(10, 1), (100, 2), (100, 3), (1000, 4)])
    func weights(backends n: Int, seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        // Weights from 1 to 10 for up to 100 backends; 50 to 100 for 1,000 (each then
        // expects at least 40 entries of 65,537, so one entry is not the whole 1 %).
        let bs = Self.backends(n) { _ in n <= 100 ? UInt32.random(in: 1...10, using: &rng) : UInt32.random(in: 50...100, using: &rng) }
        let size = n <= 100 ? Maglev.defaultTableSize : 655_373
        let table = Maglev.table(bs, size: size)
        #expect(table.count == size && table.allSatisfy { Int($0) < n })
        let worst = Self.worstShareError(bs, table)
        #expect(worst <= 0.01, "worst relative share error \(worst)")
    }

    @Test("removing 1 of 100 backends moves at most 1 % of the other backends' entries")
    func gentleRemoval() {
        let bs = Self.backends(100)
        let before = Maglev.table(bs)
        for removed in [0, 37, 99] {
            var fewer = bs
            fewer.remove(at: removed)
            let after = Maglev.table(fewer)
            // Map indices back to the original list.
            let original = { (i: UInt32) in Int(i) < removed ? Int(i) : Int(i) + 1 }
            var kept = 0, moved = 0
            for (e, b) in before.enumerated() where Int(b) != removed {
                kept += 1
                if original(after[e]) != Int(b) { moved += 1 }
            }
            #expect(Double(moved) / Double(kept) <= 0.01, "removing \(removed): \(moved) of \(kept) entries moved")
        }
    }

    @Test("tables are deterministic: the same backends in any order give the same entries")
    func deterministic() {
        let bs = Self.backends(50) { UInt32($0 % 7 + 1) }
        let table = Maglev.table(bs)
        #expect(Maglev.table(bs) == table)
        let shuffled = bs.reversed().map { $0 }
        let other = Maglev.table(shuffled)
        // Same backend for every entry (indices differ because the order does).
        #expect(table.map { bs[Int($0)].key } == other.map { shuffled[Int($0)].key })
        // A fixed fingerprint: a change to the hash or the fill would move flows between releases.
        #expect(Array(table.prefix(8)) == [26, 45, 46, 12, 19, 33, 13, 13])
        #expect(Maglev.hash([1, 2, 3], seed: 0) == 9_863_372_152_255_764_309)
    }

    @Test func sizes() {
        #expect(Maglev.isPrime(65537) && Maglev.isPrime(655_373) && !Maglev.isPrime(65536))
        #expect(Maglev.table([], size: 7).isEmpty)
        #expect(Maglev.table(Self.backends(1), size: 7) == Array(repeating: 0, count: 7))
    }
}
