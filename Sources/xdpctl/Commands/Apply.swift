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

            When the file differs from the applied one only inside one firewall's rule \
            list, apply decodes and checks just the rules that changed and patches a copy \
            of the running table (milliseconds, not seconds, at 100,000 rules); other \
            changes, and edits since the last full compile that add up to more than 64 \
            rule boxes removed or 4,096 added, take a full compile.
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
        output("applied generation \(result.generation)\(result.patched ? " (patched the running firewall table)" : "")")
    }
}
