import CXDPCtlABI
import Glibc
import Testing
@testable import XDPCtlBPF
@testable import XDPCtlKit

@Suite("Private loads (replay -f)", .serialized)
struct PrivateLoadTests {
    @Test("a private load pins its program under a root of its own and attaches nothing; it removes roots whose owner is gone, not those in use")
    func privateRoots() throws {
        try PatchApplyTests.withDataplane("xktpriv") { dp in
            let text = #"{"version": 1, "interfaces": [{"name": "xlba", "firewall": {"default_action": "allow", "rules": [{"name": "no-ssh", "action": "drop", "proto": "tcp", "dst_ports": [22]}]}}, {"name": "nosuch0"}]}"#
            // A root left by a killed command (its owner lock free), and one in use.
            let abandoned = PinRoot("\(dp.root.path)-private-999999"), inUse = PinRoot("\(dp.root.path)-private-999998")
            try abandoned.create()
            _ = try abandoned.lockOwner(create: true)
            try inUse.create()
            let held = try inUse.lockOwner(create: true)
            defer { try? dp.root.removeTree(inUse.path) }

            let copy = try dp.loadPrivately(text)
            #expect(access(abandoned.path, F_OK) != 0 && access(inUse.path, F_OK) == 0)
            withExtendedLifetime(held) {}
            #expect(copy.root.path == "\(dp.root.path)-private-\(getpid())")
            #expect(access(copy.root.program("xlba"), F_OK) == 0 && access(copy.root.link("xlba"), F_OK) != 0)
            #expect(XDPLink.program(on: Netns.ifindex(of: "xlba")!) == nil, "nothing attached")
            #expect(try copy.state()?.interfaces.map(\.ifindex) == [Netns.ifindex(of: "xlba")!, 1], "a missing interface stands for the loopback")
            #expect(!dp.root.exists, "the running root is untouched")
            copy.unload()
            #expect(access(copy.root.path, F_OK) != 0)
        }
    }
}
