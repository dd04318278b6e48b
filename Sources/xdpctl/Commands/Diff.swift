import ArgumentParser
import XDPCtlCore
import XDPCtlKit

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what `apply` would change; change nothing.",
        discussion: "Lines start with + (added), - (removed) or ~ (changed). No lines: apply would change nothing.")

    @OptionGroup var config: ConfigFileOption
    @OptionGroup var kernel: KernelOptions

    func run() throws {
        let text = try config.read()
        let new = try report(file: config.file) { try Dataplane.validate(text) }
        let dataplane = try kernel.dataplane()
        let old = try report { try dataplane.state().map { try ConfigDecoder.decode($0.configText) } }
        let changes = ConfigDiff.changes(from: old, to: new)
        output(changes.isEmpty ? "no changes" : changes.joined(separator: "\n"))
    }
}
