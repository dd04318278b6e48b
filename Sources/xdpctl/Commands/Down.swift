import ArgumentParser
import XDPCtlKit

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Detach everything xdpctl attached and remove its pins.",
        discussion: "Counters and state are gone afterwards. Running it when nothing is attached is not an error.")

    @OptionGroup var kernel: KernelOptions
    @OptionGroup var lock: LockOptions

    func run() throws {
        let dataplane = try kernel.dataplane()
        lock.configure(dataplane)
        let names = try report { try dataplane.down() }
        output(names.isEmpty ? "nothing was attached" : "detached \(names.joined(separator: ", ")); removed \(dataplane.root.path)")
    }
}
