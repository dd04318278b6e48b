import ArgumentParser
import Foundation
import XDPCtlCore
import XDPCtlKit

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show counters per interface: received, verdicts, drop reasons, per-rule hits.",
        discussion: "Counters are per CPU in the kernel and summed here. With --watch, prints rates (per second) every SECONDS until interrupted, or --count times.")

    @OptionGroup var kernel: KernelOptions
    @Flag(help: "Print JSON.") var json = false
    @Option(help: ArgumentHelp("Only this interface.", valueName: "NAME")) var interface: String?
    @Option(help: ArgumentHelp("Print rates every SECONDS.", valueName: "SECONDS")) var watch: Double?
    @Option(help: ArgumentHelp("With --watch: stop after N reports.", valueName: "N")) var count: Int?

    func validate() throws {
        if let watch, !(watch > 0 && watch <= 3600) { throw ValidationError("--watch takes a number of seconds greater than 0 and at most 3600, not \(watch)") }
        if let count, count < 1 { throw ValidationError("--count takes a positive number, not \(count)") }
        if count != nil && watch == nil { throw ValidationError("--count goes with --watch") }
    }

    func run() throws {
        let dataplane = try kernel.dataplane()
        guard let first = try report({ try dataplane.stats(interface: interface) }) else { return outputNothingApplied(dataplane, json: json) }
        guard let watch else {
            output(json ? StatsRenderer.json(first.interfaces, generation: first.generation) : StatsRenderer.text(first.interfaces))
            return
        }
        var previous = first.interfaces
        var clock = ContinuousClock.now
        var reports = 0
        while count.map({ reports < $0 }) ?? true {
            Thread.sleep(forTimeInterval: watch)
            // An apply may come and go between ticks; `down` ends the watch.
            guard let (generation, current) = try report({ try dataplane.stats(interface: interface) }) else { return outputNothingApplied(dataplane, json: json) }
            let now = ContinuousClock.now
            let elapsed = Double((now - clock).components.seconds) + Double((now - clock).components.attoseconds) / 1e18
            let rates = current.map { c in c.rates(since: previous.first { $0.name == c.name } ?? InterfaceStats(name: c.name, ifindex: c.ifindex), seconds: elapsed) }
            if json {
                output(StatsRenderer.json(rates, generation: generation).replacingOccurrences(of: "\n", with: ""))
            } else {
                output("--- rates over \(String(format: "%.1f", elapsed)) s\n" + StatsRenderer.text(rates, perSecond: true))
            }
            previous = current
            clock = now
            reports += 1
        }
    }
}
