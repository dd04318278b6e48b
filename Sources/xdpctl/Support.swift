import ArgumentParser
import Foundation
import Logging
import XDPCtlAgent
import XDPCtlBPF
import XDPCtlKit

/// Options every command that touches the kernel takes.
struct KernelOptions: ParsableArguments {
    @Option(name: .customLong("pin-root"), help: ArgumentHelp(
        "bpffs directory holding xdpctl's pinned programs, maps and state.",
        discussion: "Default: $XDPCTL_PIN_ROOT, else /sys/fs/bpf/xdpctl. Give each deployment (or test) its own.",
        valueName: "DIR"))
    var pinRoot: String?

    @Option(help: ArgumentHelp(
        "Work on the interfaces of network namespace NAME (as in `ip netns add NAME`).",
        discussion: "Pins stay on the host's bpffs. status and stats default to the namespace of the last apply.",
        valueName: "NAME"))
    var netns: String?

    @Flag(help: "Print libbpf and libxdp messages (through swift-log, on standard error).")
    var verbose = false

    var resolvedPinRoot: String {
        pinRoot ?? ProcessInfo.processInfo.environment["XDPCTL_PIN_ROOT"].flatMap { $0.isEmpty ? nil : $0 } ?? "/sys/fs/bpf/xdpctl"
    }

    func dataplane() throws -> Dataplane {
        LogFormat.text.bootstrap(level: verbose ? .debug : .warning)
        let dataplane = try openDataplane()
        dataplane.onRecovery = { FileOutput.standardError.write("xdpctl: \($0)\n") }
        return dataplane
    }

    /// The data plane, once logging is set up (LoggingSystem takes one bootstrap).
    func openDataplane() throws -> Dataplane {
        try report { try Dataplane(pinRoot: resolvedPinRoot, netns: netns, verbose: verbose) }
    }
}

/// How long a command that changes the data plane waits for another one to finish.
struct LockOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Wait at most this long for another apply, down or conntrack flush under the same pin root.",
        discussion: "Such a command holds the pin root's lock; this one says it is waiting, and gives up (changing nothing, exit 1) after SECONDS.",
        valueName: "SECONDS"))
    var wait: Double = 60

    func validate() throws {
        guard wait >= 0, wait.isFinite else { throw ValidationError("--wait \(wait): expected a number of seconds, 0 or more") }
    }

    /// `dataplane` with this wait, saying on standard error when it starts to wait.
    func configure(_ dataplane: Dataplane) {
        dataplane.lockWait = wait
        let root = dataplane.root.path
        dataplane.onLockWait = { seconds in
            FileOutput.standardError.write("xdpctl: waiting for another xdpctl command to finish under \(root) (giving up after \(seconds) s; --wait)\n")
        }
    }
}

/// The config file argument.
struct ConfigFileOption: ParsableArguments {
    @Option(name: .shortAndLong, help: ArgumentHelp("The JSON config file; - reads standard input.", valueName: "FILE"))
    var file: String

    func read() throws -> String { try Self.read(file) }

    /// The text of config file `file` (- : standard input); exits 1 when it cannot.
    static func read(_ file: String) throws -> String {
        let data: Data?
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            data = FileManager.default.contents(atPath: file)
        }
        guard let data else {
            fail("cannot read \(file): \(FileManager.default.fileExists(atPath: file) ? "permission denied" : "no such file")")
        }
        guard let text = String(data: data, encoding: .utf8) else { fail("\(file) is not UTF-8 text") }
        return text
    }
}

/// Prints a warning the way every command does; the command goes on.
func warn(_ message: String) {
    FileOutput.standardError.write("xdpctl: warning: \(message)\n")
}

/// Prints an error the way every command does and exits 1.
func fail(_ message: String) -> Never {
    FileOutput.standardError.write("xdpctl: error: \(message)\n")
    Foundation.exit(1)
}

/// Runs `body`, turning a DataplaneError into a message and exit status 1.
func report<T>(file: String? = nil, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as DataplaneError {
        fail(error.message(file: file))
    }
}

/// What `status`, `stats` and `conntrack` print when nothing is applied under the pin
/// root: not an error (as `nft list ruleset` on an empty ruleset).
func outputNothingApplied(_ dataplane: Dataplane, json: Bool) {
    output(json ? #"{"interfaces": []}"# : "nothing applied under \(dataplane.root.path)")
}

func output(_ text: String) {
    FileOutput.standardOutput.write(text.hasSuffix("\n") ? text : text + "\n")
}
