import Foundation
import Glibc
import Testing

/// scripts/package.sh over the binary under test: what the .deb holds, its unit, lintian.
@Suite("The Debian package")
struct PackageTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("the package holds the binary, a hardened unit that systemd accepts, a man page per command and the examples; lintian finds no error")
    func contents() throws {
        let out = "/tmp/xdpctl-package-test-\(getpid())"
        defer { _ = try? sh(["rm", "-rf", out]) }
        let built = try sh(["\(Self.root)/scripts/package.sh", "--binary", xdpctlBinary, "--out", out, "--version", "0.1.0"], timeout: 300)
        #expect(built.status == 0, "\(built.err)")
        let deb = built.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(deb == "\(out)/xdpctl_0.1.0_amd64.deb")

        let listing = try sh(["dpkg-deb", "-c", deb]).out
        let paths = Set(listing.split(separator: "\n").compactMap { $0.split(separator: " ").last.map { String($0.dropFirst()) } })
        let commands = ["", ".agent", ".apply", ".conntrack", ".diff", ".down", ".stats", ".status", ".validate"]
        for path in ["/usr/bin/xdpctl", "/lib/systemd/system/xdpctl.service", "/usr/share/doc/xdpctl/copyright",
                     "/usr/share/doc/xdpctl/changelog.gz", "/usr/share/doc/xdpctl/examples/load-balancer.json"]
            + commands.map({ "/usr/share/man/man1/xdpctl\($0).1.gz" }) {
            #expect(paths.contains(path), "\(path) in the package:\n\(listing)")
        }
        let info = try sh(["dpkg-deb", "-f", deb, "Package", "Version", "Depends"]).out
        #expect(info.contains("Package: xdpctl") && info.contains("Version: 0.1.0"), "\(info)")
        #expect(info.contains("libbpf1") && info.contains("libxdp1") && info.contains("libc6"), "\(info)")

        let tree = "\(out)/tree"
        #expect(try sh(["dpkg-deb", "-x", deb, tree]).status == 0)
        let page = try sh(["man", "-l", "\(tree)/usr/share/man/man1/xdpctl.agent.1.gz"], timeout: 30)
        #expect(page.out.contains("--metrics-rules") && page.out.contains("SIGHUP"), "\(page.out.prefix(500))")

        // The unit as installed, pointed at the binary under test (verify runs ExecStart's path).
        let unit = try String(contentsOfFile: "\(tree)/lib/systemd/system/xdpctl.service", encoding: .utf8)
        for hardening in ["CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN", "NoNewPrivileges=yes",
                          "ProtectSystem=strict", "ReadWritePaths=/sys/fs/bpf", "KillMode=process", "ExecReload=/bin/kill -HUP $MAINPID"] {
            #expect(unit.contains(hardening), "the unit has \(hardening)")
        }
        let local = "\(out)/xdpctl.service"
        try unit.replacingOccurrences(of: "/usr/bin/xdpctl", with: "\(tree)/usr/bin/xdpctl").write(toFile: local, atomically: true, encoding: .utf8)
        let verify = try sh(["env", "MANPATH=\(tree)/usr/share/man", "systemd-analyze", "verify", local], timeout: 60)
        #expect(verify.status == 0 && verify.err.isEmpty, "systemd-analyze verify: \(verify.err)")

        // The debug binary under test keeps the toolchain's RUNPATH; a release package has none.
        let lint = try sh(["lintian", "--suppress-tags", "custom-library-search-path", deb], timeout: 300)
        let errors = lint.out.split(separator: "\n").filter { $0.hasPrefix("E:") }
        #expect(lint.status == 0 || errors.isEmpty, "lintian errors:\n\(errors.joined(separator: "\n"))\n\(lint.err)")
        #expect(errors.isEmpty)
    }
}
