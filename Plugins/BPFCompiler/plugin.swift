import Foundation
import PackagePlugin

/// Compiles `bpf/*.bpf.c` (for XDPCtlBPF), `bpf/bench/*.bpf.c` (for the benchmark) or
/// `bpf/test/*.bpf.c` and `bpf/bench/*.bpf.c` (harnesses for the kernel tests) with
/// the toolchain's clang and embeds each object, base64 in a string literal, into the
/// target, so `swift build` is the only build step and the binary carries its programs.
@main
struct BPFCompiler: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let root = context.package.directoryURL.appending(path: "bpf")
        let clang = try context.tool(named: "clang").url
        let objcopy = try context.tool(named: "llvm-objcopy").url
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?
            .compactMap { $0 as? URL } ?? []
        let headers = files.filter { $0.pathExtension == "h" }
        let folders = switch target.name {
        case "XDPCtlBPF": [root]
        case "XDPCtlKernelTests": [root.appending(path: "test"), root.appending(path: "bench")]
        default: [root.appending(path: "bench")]
        }
        let sources = files.filter { file in
            file.lastPathComponent.hasSuffix(".bpf.c")
                && folders.contains { $0.standardizedFileURL.path == file.deletingLastPathComponent().standardizedFileURL.path }
        }

        return sources.map { source in
            let name = String(source.lastPathComponent.dropLast(".bpf.c".count))
            let object = context.pluginWorkDirectoryURL.appending(path: "\(name).bpf.o")
            let swift = context.pluginWorkDirectoryURL.appending(path: "BPFObject_\(name).swift")
            let importLine = target.name == "XDPCtlBPF" ? "" : "import XDPCtlBPF\\n"
            let symbol = name.split(separator: "_").enumerated()
                .map { $0.offset == 0 ? String($0.element) : $0.element.capitalized }.joined()
            // -g gives the BTF that map definitions need; DWARF is stripped afterwards.
            let script = """
                set -e
                "\(clang.path)" -O2 -g -target bpf -Wall -Werror -I/usr/include/x86_64-linux-gnu \
                  -I"\(root.path)/include" -c "\(source.path)" -o "\(object.path)"
                "\(objcopy.path)" --strip-debug "\(object.path)"
                { printf '// Generated from bpf/%s by the BPFCompiler plugin.\\n\(importLine)' "\(source.lastPathComponent)"
                  printf 'extension EmbeddedObject {\\n    public static let \(symbol) = EmbeddedObject(name: "\(name)", base64: "'
                  base64 -w0 "\(object.path)"
                  printf '")\\n}\\n'; } > "\(swift.path)"
                """
            return .buildCommand(
                displayName: "clang -target bpf \(source.lastPathComponent)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script],
                inputFiles: [source] + headers,
                outputFiles: [swift])
        }
    }
}
