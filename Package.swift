// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "xdpctl",
    products: [
        .executable(name: "xdpctl", targets: ["xdpctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C: libraries from pkg-config, the shared ABI header, and the few C idioms Swift can't express.
        .systemLibrary(name: "CLibBPF", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        .systemLibrary(name: "CLibXDP", pkgConfig: "libxdp", providers: [.apt(["libxdp-dev"])]),
        .systemLibrary(name: "CXDPCtlABI", path: "bpf/include"),
        .target(name: "CXDPCtlShims", dependencies: ["CLibBPF", "CLibXDP"]),
        .plugin(name: "BPFCompiler", capability: .buildTool()),

        // Swift, no C: config model and validation, the firewall compiler, renderers.
        .target(name: "XDPCtlCore", dependencies: ["CXDPCtlABI"]),
        // Typed layer over libbpf/libxdp; embeds the BPF objects built from bpf/.
        .target(name: "XDPCtlBPF", dependencies: ["CLibBPF", "CLibXDP", "CXDPCtlShims", "CXDPCtlABI"],
                plugins: ["BPFCompiler"]),
        // The data plane as the commands see it: apply, status, stats, down.
        .target(name: "XDPCtlKit", dependencies: ["XDPCtlCore", "XDPCtlBPF"]),
        .executableTarget(name: "xdpctl", dependencies: [
            "XDPCtlKit", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The benchmark command (scripts/bench.sh): program cost against baselines in one run.
        .executableTarget(name: "xdpctl-bench", dependencies: [
            "XDPCtlKit", "XDPCtlTestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], plugins: ["BPFCompiler"]),

        // The first-match reference classifier and rule-set generators, shared by tests and the benchmark.
        .target(name: "XDPCtlTestSupport", dependencies: ["XDPCtlCore"], path: "Tests/Support"),
        .testTarget(name: "XDPCtlCoreTests", dependencies: ["XDPCtlCore", "XDPCtlTestSupport"]),
        .testTarget(name: "XDPCtlKernelTests", dependencies: ["XDPCtlKit", "XDPCtlTestSupport"], plugins: ["BPFCompiler"]),
        .testTarget(name: "XDPCtlEndToEndTests", dependencies: ["XDPCtlCore"]),
    ]
)
