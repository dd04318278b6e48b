import ArgumentParser
import XDPCtlCore
import XDPCtlKit

struct Conntrack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the connection tables: NAT connections, and the load balancers' (client, VIP, backend).",
        discussion: """
            NAT: one line per connection: the tuple it arrived with (ORIGINAL), the tuple its \
            replies arrive with (REPLY), state, packets each way, age, and the seconds it has \
            left unless a packet comes. States: new (no reply yet), established, closing (TCP \
            FIN seen), closed (TCP RST seen); docs/config.md gives each state's timeout. \
            Expired connections are not listed: no packet matches them.

            LOAD BALANCERS: half-open (one packet seen: a SYN, or a first datagram; kept apart \
            so a flood of spoofed first packets cannot push out established connections), \
            established (the client sent a second packet; the flow stays on its backend), \
            stale (its backend was removed; the next packet is balanced afresh). Their entries \
            are not removed when a connection closes: the tables are LRU, and the least \
            recently used entry makes room when one is full.
            """,
        subcommands: [List.self, Flush.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the connections (the default).")

        @OptionGroup var kernel: KernelOptions
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let dataplane = try kernel.dataplane()
            guard let entries = try report({ try dataplane.conntrack() }),
                  let nat = try report({ try dataplane.natConnections() }) else { return outputNothingApplied(dataplane, json: json) }
            output(json ? ConntrackRenderer.json(entries, nat: nat) : ConntrackRenderer.text(entries, nat: nat))
        }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End NAT connections: all, or those every given filter matches.",
            discussion: """
                Both entries of each connection go. A flow whose connection was flushed is a \
                new flow to the data path: through SNAT its next packet gets a new mapping \
                (possibly another port, which breaks a TCP connection); a reply is passed \
                untranslated.
                """)

        @OptionGroup var kernel: KernelOptions
        @OptionGroup var lock: LockOptions
        @Option(help: "Only connections of this interface.") var interface: String?
        @Option(help: "Only connections of this NAT rule (by name).") var rule: String?
        @Option(help: "Only connections with this address in either tuple.") var address: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            var filter = NATFlushFilter(interface: interface, rule: rule)
            if let address {
                guard let parsed = IPAddress(address) else {
                    throw ValidationError("--address \"\(address)\" is not an IP address; expected IPv4 (10.0.0.1) or IPv6 (fd00::1)")
                }
                filter.address = parsed
            }
            let dataplane = try kernel.dataplane()
            lock.configure(dataplane)
            let removed = try report({ try dataplane.flushNAT(filter) })
            output(json ? "{\"flushed\": \(removed)}\n" : "flushed \(removed) NAT connection\(removed == 1 ? "" : "s")\n")
        }
    }
}
