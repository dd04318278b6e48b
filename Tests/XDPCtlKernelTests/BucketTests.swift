import CXDPCtlABI
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore

/// The token-bucket arithmetic of bpf/lib/bucket.h, run in the kernel through
/// bpf/test/bucket_harness.bpf.c with the test's own clock, against a model in Swift that
/// keeps each state as one fixed-point number.
@Suite("Rate-limit buckets: GCRA arithmetic in the kernel")
struct BucketTests {
    /// The harness frame: struct bucket_case in bucket_harness.bpf.c.
    struct Case {
        var entry = dp_rl_entry()
        var bucket = dp_rl_bucket()
        /// In clock units (2^-4 ns); `ns` reads and writes it in nanoseconds.
        var now: UInt64 = 0
        var len: UInt32 = 0
        var passed: UInt32 = 0
        var ns: UInt64 {
            get { now >> UInt64(DP_RL_TIME_BITS) }
            set { now = newValue << UInt64(DP_RL_TIME_BITS) }
        }
    }

    static let unit = UInt64(1) << UInt64(DP_RL_TIME_BITS) // clock units per ns

    /// What bucket.h must compute: a packet passes when max(TAT, now) + cost <= now + window
    /// in both dimensions, and then moves each TAT on by its cost.
    struct Model {
        var pkts: UInt64 = 0, bytes: UInt64 = 0

        mutating func charge(_ e: dp_rl_entry, now: UInt64, len: UInt32) -> Bool {
            let p = max(pkts, now), b = max(bytes, now)
            let pc = e.pkt_cost, bc = (UInt64(len) * e.byte_cost) >> UInt64(DP_RL_BYTE_BITS)
            if pc != 0 && p - now + pc > e.pkt_window { return false }
            if e.byte_cost != 0 && b - now + bc > e.byte_window { return false }
            if pc != 0 { pkts = p + pc }
            if e.byte_cost != 0 { bytes = b + bc }
            return true
        }
    }

    let harness: Int32
    let object: BPFObject

    init() throws {
        object = try BPFObject(.bucketHarness, pinRoot: nil)
        harness = try object.programFD("bucket_harness")
    }

    func run(_ c: inout Case) throws -> Bool {
        let frame = withUnsafeBytes(of: c) { Array($0) }
        let out = try TestRun.run(programFD: harness, packet: frame)
        #expect(out.returnValue == 2, "harness returned \(out.returnValue)")
        c = out.output.withUnsafeBytes { $0.loadUnaligned(as: Case.self) }
        return c.passed == 1
    }

    func entry(pps: UInt64?, burstPackets: UInt64? = nil, bps: UInt64? = nil, burstBytes: UInt64? = nil) throws -> dp_rl_entry {
        let limit = RateLimit(name: "l", proto: nil, src: [], dst: [], srcPorts: [], dstPorts: [], tcpFlags: [], per: .rule,
                              packetsPerSecond: pps, burstPackets: burstPackets, bytesPerSecond: bps, burstBytes: burstBytes,
                              sourceIPv4Prefix: 32, sourceIPv6Prefix: 128)
        return try RateLimitCompiler.compile([limit], slots: ["l": 1])[1]
    }

    @Test("a full bucket passes its burst at once, then one packet per cost")
    func burstThenRate() throws {
        var c = Case(entry: try entry(pps: 1000, burstPackets: 3), len: 100)
        c.ns = 5_000_000_000
        #expect(c.entry.pkt_cost == 1_000_000 * Self.unit)
        var passed: [Bool] = []
        for _ in 0..<4 { passed.append(try run(&c)) }
        #expect(passed == [true, true, true, false])
        #expect(c.bucket.pkts == 5_003_000_000 * Self.unit)
        c.ns += 999_999
        #expect(try run(&c) == false, "1 ns before the next token")
        c.ns += 1
        #expect(try run(&c) == true)
        #expect(c.bucket.pkts == 5_004_000_000 * Self.unit)
        c.ns += 10_000_000_000 // idle: the bucket refills to its burst, no further
        #expect((0..<4).map { _ in try! run(&c) } == [true, true, true, false])
    }

    @Test("fractional costs (3 packets/s: 333,333,333.3125 ns each) follow the model exactly")
    func fractions() throws {
        var c = Case(entry: try entry(pps: 3, burstPackets: 1), len: 60)
        c.ns = 1_000
        var model = Model()
        for step in 0..<12 {
            let expected = model.charge(c.entry, now: c.now, len: c.len)
            #expect(try run(&c) == expected, "step \(step)")
            #expect(c.bucket.pkts == model.pkts, "step \(step)")
            c.ns += 333_333_333
        }
    }

    @Test("bytes: a packet over the byte rate is dropped and charges neither dimension")
    func bytes() throws {
        var c = Case(entry: try entry(pps: 1_000_000, burstPackets: 100, bps: 1_000_000, burstBytes: 3000), len: 1500)
        c.ns = 7_000_000
        #expect(try run(&c) && run(&c))
        let before = c.bucket.pkts
        #expect(try run(&c) == false)
        #expect(c.bucket.pkts == before && c.bucket.bytes == (7_000_000 + 3_000_000) * Self.unit)
        c.ns += 1_500_000 // 1,500 bytes at 1 MB/s
        #expect(try run(&c))
    }

    @Test("random limits and arrivals: the kernel and the model agree bit for bit", arguments: [UInt64(1), 2, 3])
    func random(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        for _ in 0..<20 {
            let pps = rng.next() % 2 == 0 ? [1000, 3, UInt64.random(in: 1...5_000_000, using: &rng)].randomElement(using: &rng)! : nil
            let bps = pps == nil || Bool.random(using: &rng) ? UInt64.random(in: 1_000...1 << 40, using: &rng) : nil
            var c = Case(entry: try entry(pps: pps, burstPackets: [1, 2, UInt64.random(in: 1...64, using: &rng)].randomElement(using: &rng)!, bps: bps,
                                          burstBytes: UInt64.random(in: 1500...200_000, using: &rng)),
                         now: UInt64.random(in: 1...1 << 40, using: &rng) * Self.unit)
            var model = Model()
            for step in 0..<60 {
                c.len = UInt32.random(in: 60...1500, using: &rng)
                let expected = model.charge(c.entry, now: c.now, len: c.len)
                guard try run(&c) == expected, c.bucket.pkts == model.pkts, c.bucket.bytes == model.bytes else {
                    Issue.record("seed \(seed) step \(step): kernel \(c.passed) \(c.bucket), model \(expected) \(model)")
                    return
                }
                // Arrivals at random, and exactly on a packet's cost (the boundary of "fits").
                let cost = max(c.entry.pkt_cost, (UInt64(c.len) * c.entry.byte_cost) >> UInt64(DP_RL_BYTE_BITS))
                c.now += [0, cost, cost + 1, UInt64.random(in: 0...2_000_000, using: &rng) * Self.unit].randomElement(using: &rng)!
            }
        }
    }
}
