import ArgumentParser
import XDPCtlKit

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what is attached where: mode, program ids, config generation, map fill and memory.")

    @OptionGroup var kernel: KernelOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let dataplane = try kernel.dataplane()
        guard let status = try report({ try dataplane.status() }) else { return outputNothingApplied(dataplane, json: json) }
        output(json ? status.json : status.text)
    }
}
