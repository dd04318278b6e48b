import Glibc
import Testing
@testable import XDPCtlBPF

/// A pin root anyone else could change is refused: whoever can remove a pinned link
/// detaches the firewall.
@Suite("Pin roots")
struct PinRootTests {
    @Test("a pin root is created private, and one another user owns or can write is refused")
    func privatePinRoots() throws {
        #expect(getuid() == 0, "kernel tests need root: run them through scripts/test.sh")
        let root = PinRoot("/sys/fs/bpf/xdpctl-pinroot-\(getpid())")
        defer { try? root.removeTree(root.path) }
        try? root.removeTree(root.path)
        try root.create()
        var info = stat()
        #expect(stat(root.path, &info) == 0 && info.st_mode & 0o7777 == 0o700)
        try root.create() // adopting its own directory is fine

        chmod(root.path, 0o777)
        let writable = #expect(throws: BPFError.self) { try root.create() }
        #expect(writable?.description.contains("mode 777") == true && writable?.description.contains("no one else can write") == true, "\(String(describing: writable))")
        chmod(root.path, 0o700)
        chown(root.interfaces, 65534, 65534)
        let foreign = #expect(throws: BPFError.self) { try root.create() }
        #expect(foreign?.description.contains("owner uid 65534") == true, "\(String(describing: foreign))")
    }

    @Test("a command that finds the pin root locked says it waits, and gives up after its wait with ETIMEDOUT")
    func lockWait() throws {
        let root = PinRoot("/sys/fs/bpf/xdpctl-pinlock-\(getpid())")
        defer { try? root.removeTree(root.path) }
        try? root.removeTree(root.path)
        try root.create()
        do {
            let held = try root.lock()
            var told = 0
            let start = ContinuousClock.now
            let error = #expect(throws: BPFError.self) { _ = try root.lock(wait: 0.3) { told += 1 } }
            let waited = ContinuousClock.now - start
            #expect(error?.errno == .timedOut && error?.description.contains("held the pin root's lock") == true, "\(String(describing: error))")
            #expect(told == 1 && waited >= .milliseconds(300) && waited < .seconds(3), "told \(told), waited \(waited)")
            withExtendedLifetime(held) {}
        }
        _ = try root.lock(wait: 0) // free again once the holder is gone
    }
}
