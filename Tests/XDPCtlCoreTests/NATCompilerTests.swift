import CXDPCtlABI
import Testing
@testable import XDPCtlCore

@Suite("NAT: compiled tables")
struct NATCompilerTests {
    static let config = #"""
    {"version": 1, "interfaces": [{"name": "eth0", "nat": {
      "dnat": [{"name": "web", "proto": "tcp", "dst": "203.0.113.5", "dst_port": 8080, "to_address": "192.168.1.10", "to_port": 80}],
      "snat": [{"name": "masq", "src": ["192.168.0.0/16", "10.1.2.0/24"], "port_range": "20000-20009"},
               {"name": "out6", "src": ["fd00:1::/64"], "to_address": "2001:db8::5"}]}}]}
    """#

    @Test("SNAT entries: one per rule and src prefix, in file order, masked; masquerade takes the interface's address of the family; DNAT by public endpoint")
    func tables() throws {
        let nat = try #require(try ConfigDecoder.decode(Self.config).interfaces[0].nat)
        let slots = ["web": UInt32(1), "masq": 2, "out6": 3]
        let own = [IPAddress("fe80::1")!, IPAddress("198.51.100.7")!]
        let t = try NATCompiler.compile(nat, slots: slots, addresses: own)
        #expect(t.snat.count == 4 && t.snat[0].count == 3)
        let first = t.snat[1]
        #expect(first.rule == 2 && first.family == 4 && first.port_lo == 20000 && first.port_hi == 20009)
        #expect(first.mask.0 == 0xffff_0000 && first.value.0 == 0xc0a8_0000 && first.to.0 == IPAddress("198.51.100.7")!.words[0])
        #expect(t.snat[2].mask.0 == 0xffff_ff00 && t.snat[2].value.0 == 0x0a01_0200)
        let v6 = t.snat[3]
        #expect(v6.family == 6 && v6.mask.0 == ~0 && v6.mask.1 == ~0 && v6.mask.2 == 0 && v6.port_lo == 1024 && v6.port_hi == 65535)
        #expect([v6.to.0, v6.to.1, v6.to.2, v6.to.3] == IPAddress("2001:db8::5")!.words)
        #expect(t.dnat.count == 1 && t.dnat[0].key.port == 8080 && t.dnat[0].key.proto == 6 && t.dnat[0].value.to_port == 80 && t.dnat[0].value.rule == 1)
    }

    @Test("masquerade without an address of the family is refused at apply, naming the rule")
    func masqueradeNeedsAnAddress() throws {
        let nat = try #require(try ConfigDecoder.decode(Self.config).interfaces[0].nat)
        #expect(throws: CapacityError.self) { try NATCompiler.compile(nat, slots: [:], addresses: [IPAddress("2001:db8::9")!]) }
        do { _ = try NATCompiler.compile(nat, slots: [:], addresses: []) } catch {
            #expect(error.message.hasPrefix("SNAT rule \"masq\" has no to_address and the interface has no IPv4 address to masquerade as"))
        }
        // validate knows no interface: it compiles with the unspecified address.
        #expect((try? NATCompiler.compile(nat, slots: [:], addresses: nil)) != nil)
    }

    @Test("diff names NAT rules added, removed and changed")
    func diff() throws {
        let old = try ConfigDecoder.decode(Self.config)
        let new = try ConfigDecoder.decode(Self.config.replacingOccurrences(of: #""to_port": 80"#, with: #""to_port": 81"#)
            .replacingOccurrences(of: #"{"name": "out6", "src": ["fd00:1::/64"], "to_address": "2001:db8::5"}"#, with: #"{"name": "out7", "src": ["fd00:1::/64"]}"#))
        #expect(ConfigDiff.changes(from: old, to: new) == [
            "~ eth0: DNAT rule \"web\" changed", "+ eth0: SNAT rule \"out7\" at position 2", "- eth0: SNAT rule \"out6\""])
    }
}
