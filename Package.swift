// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "xdpctl",
    products: [
        .executable(name: "xdpctl", targets: ["xdpctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        // Without its Foundation trait: the agent only runs birdc and reads its answer.
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2", traits: []),
    ],
    targets: [
        // C: libraries from pkg-config, the shared ABI header, and the few C idioms Swift can't express.
        .systemLibrary(name: "CLibBPF", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        .systemLibrary(name: "CLibXDP", pkgConfig: "libxdp", providers: [.apt(["libxdp-dev"])]),
        .systemLibrary(name: "CXDPCtlABI", path: "bpf/include"),
        .systemLibrary(name: "CLibPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        .target(name: "CXDPCtlShims", dependencies: ["CLibBPF", "CLibXDP"]),
        .target(name: "CPcapShims", dependencies: ["CLibPcap"]),
        .plugin(name: "BPFCompiler", capability: .buildTool()),

        // Swift, no C: config model and validation, the firewall compiler, renderers.
        .target(name: "XDPCtlCore", dependencies: ["CXDPCtlABI"]),
        // Typed layer over libbpf/libxdp; embeds the BPF objects built from bpf/.
        .target(name: "XDPCtlBPF", dependencies: [
                    "CLibBPF", "CLibXDP", "CXDPCtlShims", "CXDPCtlABI",
                    .product(name: "SystemPackage", package: "swift-system"), .product(name: "Logging", package: "swift-log"),
                ],
                plugins: ["BPFCompiler"]),
        // The data plane as the commands see it: apply, status, stats, down, capture (libpcap
        // compiles its filters).
        // -disable-cmo: swiftc 6.3.1 crashes optimizing a client's calls into this module's
        // generic map accessors ("Conformance of 'dp_rl_entry' to 'BitwiseCopyable' not
        // found in referenced module 'CXDPCtlABI'", in release builds of xdpctl-bench); its
        // clients make coarse calls, so inlining across the boundary buys nothing.
        .target(name: "XDPCtlKit", dependencies: ["XDPCtlCore", "XDPCtlBPF", "CPcapShims", .product(name: "SystemPackage", package: "swift-system")],
                swiftSettings: [.unsafeFlags(["-disable-cmo"])]),
        // The long-running agent: applies on change, serves Prometheus metrics (SwiftNIO's HTTP
        // server, swift-prometheus's registry), announces VIPs through BIRD (birdc, run
        // with swift-subprocess).
        .target(name: "XDPCtlAgent", dependencies: [
            "XDPCtlKit", "CXDPCtlShims", .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "Subprocess", package: "swift-subprocess"),
        ]),
        .executableTarget(name: "xdpctl", dependencies: [
            "XDPCtlKit", "XDPCtlAgent", .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log"),
        ]),
        // What tests and the benchmark run the data plane on, which xdpctl does not link: packet
        // builders, rule-set generators, the first-match reference and the data path's walks
        // and hashes in Swift, load balancers written straight into a loaded program.
        .target(name: "XDPCtlWorkloads", dependencies: ["XDPCtlKit"]),
        // The benchmark command (scripts/bench.sh): program cost against baselines in one run, and
        // its traffic generator (C: sendmmsg).
        .target(name: "CPacketGen"),
        .executableTarget(name: "xdpctl-bench", dependencies: [
            "XDPCtlKit", "XDPCtlWorkloads", "CPacketGen", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], plugins: ["BPFCompiler"]),

        .testTarget(name: "XDPCtlCoreTests", dependencies: ["XDPCtlCore", "XDPCtlWorkloads"]),
        .testTarget(name: "XDPCtlKernelTests", dependencies: ["XDPCtlKit", "XDPCtlWorkloads", "CPacketGen"], plugins: ["BPFCompiler"]),
        .testTarget(name: "XDPCtlAgentTests", dependencies: ["XDPCtlAgent", "XDPCtlKit", "XDPCtlCore"]),
        .testTarget(name: "XDPCtlEndToEndTests", dependencies: ["XDPCtlCore"]),
    ]
)
