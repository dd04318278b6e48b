import Testing
import XDPCtlWorkloads
@testable import XDPCtlCore

/// The config decoder under random mutation, in bounded time: seeded, so any finding
/// replays. Each mutant is decoded; it must never crash, every error must say something
/// in bounded length (its place is its JSON path; an empty one is the document itself),
/// and a mutant that decodes must decode again to the same config.
@Suite("Config decoder fuzzing (seeded, bounded)")
struct ConfigFuzzTests {
    static let seeds = [
        #"{"version": 1, "interfaces": [{"name": "eth0", "xdp_mode": "auto", "firewall": {"default_action": "drop", "rules": [{"name": "ssh", "action": "allow", "proto": "tcp", "src": ["10.0.0.0/8", "2001:db8::/32"], "dst_ports": [22, "1000-2000"]}, {"name": "icmp", "action": "allow", "proto": "icmp"}]}, "rate_limits": [{"name": "syn", "per": "source", "proto": "tcp", "tcp_flags": ["syn"], "packets_per_second": 100, "burst_packets": 200}]}]}"#,
        #"{"version": 1, "interfaces": [{"name": "eth0", "load_balancers": [{"name": "web", "vip": "203.0.113.10", "proto": "tcp", "port": 80, "table_size": 65537, "backends": [{"address": "10.1.0.2", "port": 8080, "weight": 100}, {"address": "10.1.0.3", "port": 8080, "state": "draining"}]}]}, {"name": "eth1", "nat_fast_path": "on"}]}"#,
        #"{"version": 1, "interfaces": [{"name": "wan0", "nat": {"snat": [{"name": "masq", "src": ["192.168.0.0/16"], "port_range": "20000-29999"}, {"name": "m6", "src": ["fd00::/64"], "to_address": "2001:db8::1"}], "dnat": [{"name": "web", "proto": "tcp", "dst": "203.0.113.5", "dst_port": 8080, "to_address": "192.168.1.10", "to_port": 80}]}}]}"#,
    ]

    /// Values that sit on the edges of what the decoder takes.
    static let oddValues: [JSONValue] = [
        .null, .bool(true), .number("0"), .number("-1"), .number("65535"), .number("65536"), .number("4294967296"),
        .number("1e400"), .number("0.5"), .string(""), .string("x"), .string("10.0.0.0/33"), .string("::/129"),
        .string("0-65535"), .string("5-1"), .string(String(repeating: "a", count: 5000)), .string("\u{1b}[2J"),
        .array([]), .array([.null]), .object([]), .object([JSONMember(key: "", value: .null)]),
    ]

    /// One structural mutation of a parsed config: a value replaced, a member dropped,
    /// duplicated or added, an array item dropped or repeated.
    static func mutate(_ v: JSONValue, _ rng: inout SeededRandom, depth: Int = 0) -> JSONValue {
        switch v {
        case .object(let members) where !members.isEmpty && rng.below(4) != 0:
            var m = members
            let i = rng.below(m.count)
            switch rng.below(5) {
            case 0: m.remove(at: i)
            case 1: m.append(m[i])
            case 2: m.append(JSONMember(key: ["name", "rules", "src", "port", "weight", "bogus"][rng.below(6)], value: oddValues[rng.below(oddValues.count)]))
            case 3: m[i] = JSONMember(key: m[i].key, value: oddValues[rng.below(oddValues.count)])
            default: m[i] = JSONMember(key: m[i].key, value: mutate(m[i].value, &rng, depth: depth + 1))
            }
            return .object(m)
        case .array(let items) where !items.isEmpty && rng.below(4) != 0:
            var a = items
            let i = rng.below(a.count)
            switch rng.below(4) {
            case 0: a.remove(at: i)
            case 1: a.append(contentsOf: Array(repeating: a[i], count: 1 + rng.below(3)))
            case 2: a[i] = oddValues[rng.below(oddValues.count)]
            default: a[i] = mutate(a[i], &rng, depth: depth + 1)
            }
            return .array(a)
        default:
            return oddValues[rng.below(oddValues.count)]
        }
    }

    /// Byte-level damage to the text: a byte flipped, cut, or repeated.
    static func damage(_ text: String, _ rng: inout SeededRandom) -> [UInt8] {
        var b = Array(text.utf8)
        for _ in 0...rng.below(3) where !b.isEmpty {
            let i = rng.below(b.count)
            switch rng.below(4) {
            case 0: b[i] = UInt8(truncatingIfNeeded: rng.next())
            case 1: b.removeSubrange(i..<min(b.count, i + 1 + rng.below(8)))
            case 2: b.insert(contentsOf: b[i..<min(b.count, i + 1 + rng.below(8))], at: i)
            default: b = Array(b.prefix(i))
            }
        }
        return b
    }

    /// Decodes `bytes`; records what is wrong with the outcome, if anything.
    static func check(_ bytes: [UInt8], _ findings: inout [String]) {
        do {
            let config = try ConfigDecoder.decode(bytes: bytes)
            let again = try ConfigDecoder.decode(bytes: bytes)
            if config != again { findings.append("decoded twice, differently: \(String(decoding: bytes.prefix(200), as: UTF8.self))") }
        } catch {
            if error.errors.isEmpty { findings.append("an error with no entries") }
            for e in error.errors where e.message.isEmpty || e.description.utf8.count > 1000 {
                findings.append("error without a message, or too long (\(e.description.utf8.count) bytes): \(e.description.prefix(200))")
            }
        }
    }

    @Test("20,000 mutants of three valid configs (structural and byte-level): no crash, every error said in bounded length, decoding repeatable")
    func mutants() throws {
        var rng = SeededRandom(seed: 0x78_6470_6374_6C)
        var findings: [String] = []
        var structural = 0, damaged = 0
        for round in 0..<20_000 {
            let seed = Self.seeds[round % Self.seeds.count]
            if round % 2 == 0 {
                var value = try JSONParser.parse(seed)
                for _ in 0...rng.below(4) { value = Self.mutate(value, &rng) }
                let text = JSONOutput.render(value)
                Self.check(Array(text.utf8), &findings)
                structural += 1
            } else {
                Self.check(Self.damage(seed, &rng), &findings)
                damaged += 1
            }
        }
        print("config fuzzing: \(structural) structural and \(damaged) byte-level mutants, \(findings.count) findings")
        #expect(findings.isEmpty, "\(findings.prefix(5))")
    }
}
