import ArgumentParser
import XDPCtlKit

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the kernel match a config file.",
        discussion: """
            Attaches to interfaces the file names, swaps in the new rule tables atomically \
            (a packet sees the old rules or the new ones, never a mix), and detaches from \
            interfaces xdpctl attached earlier that the file no longer names. Counters of \
            rules that keep their name carry over. Applying the same file again changes \
            nothing. If anything fails, the running state is left as it was.
            """)

    @OptionGroup var config: ConfigFileOption
    @OptionGroup var kernel: KernelOptions

    func run() throws {
        let text = try config.read()
        let dataplane = try kernel.dataplane()
        let result = try report(file: config.file) { try dataplane.apply(text) }
        if !result.changed {
            output("no changes (generation \(result.generation))")
            return
        }
        output(result.changes.joined(separator: "\n"))
        output("applied generation \(result.generation)")
    }
}
