import ArgumentParser
import XDPCtlCore
import XDPCtlKit

struct Conntrack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the load balancers' connection tables: client, VIP, backend, state, age.",
        discussion: """
            STATES: half-open (one packet seen: a SYN, or a first datagram; kept apart so a \
            flood of spoofed first packets cannot push out established connections), \
            established (the client sent a second packet; the flow stays on its backend), \
            stale (its backend was removed; the next packet is balanced afresh).

            Entries are not removed when a connection closes: the tables are LRU, and the \
            least recently used entry makes room when one is full. A flow whose entry was \
            pushed out is balanced by the Maglev table again, which picks the same backend \
            unless the backends changed.
            """)

    @OptionGroup var kernel: KernelOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let dataplane = try kernel.dataplane()
        guard let entries = try report({ try dataplane.conntrack() }) else { return outputNothingApplied(dataplane, json: json) }
        output(json ? ConntrackRenderer.json(entries) : ConntrackRenderer.text(entries))
    }
}
