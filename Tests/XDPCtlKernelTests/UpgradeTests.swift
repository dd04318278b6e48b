import CLibBPF
import CXDPCtlABI
import Glibc
import Testing
import XDPCtlWorkloads
@testable import XDPCtlBPF
@testable import XDPCtlCore
@testable import XDPCtlKit

@Suite("Apply over a program of an older build", .serialized)
struct UpgradeTests {
    static func config(rules: String) -> String {
        #"{"version": 1, "interfaces": [{"name": "xlba", "firewall": {"default_action": "allow", "rules": [\#(rules)]}, "load_balancers": [{"name": "web", "vip": "10.50.100.1", "proto": "tcp", "port": 80, "backends": [{"address": "10.51.1.2", "port": 8080}]}]}]}"#
    }

    @Test("a program of ABI 5, whose VIP filter went by port alone, is replaced by the next change, its filter's pin goes, and the new program balances")
    func vipFilterByPort() throws {
        try PatchApplyTests.withDataplane("xktupg") { dp in
            _ = try dp.apply(Self.config(rules: ""))
            let dir = dp.root.interface("xlba"), filter = "\(dp.root.interface("xlba"))/\(DP_MAP_LB_VFILTER)", old = "\(dir)/dp_lb_vports"
            // ABI 5's layout: the filter under its old name.
            #expect(rename(filter, old) == 0)
            let before = try XDPLink.info(pinPath: dp.root.link("xlba")).programID
            let result = try dp.apply(Self.config(rules: #"{"name": "no-ssh", "action": "drop", "proto": "tcp", "dst_ports": [22]}"#))
            #expect(result.changes.contains("~ xlba: program of an older build replaced"), "\(result.changes)")
            #expect(try XDPLink.info(pinPath: dp.root.link("xlba")).programID != before)
            #expect(access(filter, F_OK) == 0 && access(old, F_OK) != 0)
            // What tells a running program's build: it reads the pinned filter.
            #expect(try XDPLink.mapIDs(pinPath: dp.root.link("xlba")).contains(try BPFMap.open(pinned: filter).info().id))

            // An apply that fails after loading a new program leaves that program's pins
            // beside the running one: the filter pinned, but not the running program's.
            // It still counts as an older build.
            #expect(rename(filter, old) == 0)
            let placeholder = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_lb_vfilter", keySize: 4, valueSize: 4, maxEntries: Int(DP_LB_FILTER_WORDS))
            try placeholder.pin(at: filter)
            let again = try dp.apply(Self.config(rules: ""))
            #expect(again.changes.contains("~ xlba: program of an older build replaced"), "\(again.changes)")
            #expect(try XDPLink.mapIDs(pinPath: dp.root.link("xlba")).contains(try BPFMap.open(pinned: filter).info().id))
            let program = try XDPLink.program(pinPath: dp.root.link("xlba"))
            let b = PacketBuilder()
            let syn = Checksums.filled(b.ipv4(src: "10.50.0.2", dst: "10.50.100.1", .tcp(src: 40000, dst: 80, flags: 0x02)))
            let other = Checksums.filled(b.ipv4(src: "10.50.0.2", dst: "10.50.100.7", .tcp(src: 40000, dst: 80, flags: 0x02)))
            #expect(try TestRun.run(programFD: program.raw, packet: syn).returnValue == DP_VERDICT_REDIRECT.rawValue)
            #expect(try TestRun.run(programFD: program.raw, packet: other).returnValue == DP_VERDICT_PASS.rawValue)
        }
    }
}
