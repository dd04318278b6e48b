import ArgumentParser
import XDPCtlBPF
import XDPCtlCore
import XDPCtlKit

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a pcap file's packets through an interface's XDP program, running or loaded from a config file.",
        discussion: """
            Reads IN (pcap or pcapng of Ethernet frames, through libpcap; - is standard \
            input) and runs each packet through the XDP program attached to --interface \
            with BPF_PROG_TEST_RUN, as if it arrived there. Per packet it prints the \
            verdict, the drop reason and what decided it (firewall rule or default action, \
            rate limit, load-balancer backend), then a summary by verdict and decider. With \
            -w OUT it writes the packets as the program left them (load-balancer and NAT \
            rewrites) as pcap.

            The running tables decide, and change as traffic changes them: counters count \
            the replayed packets, rate-limit buckets are charged, connections a SYN opens \
            enter the connection table. Only the XDP hook runs (tc egress does not).

            With -f FILE the packets go through the file's config instead, loaded as apply \
            would load it but privately: under a pin root of its own (PIN_ROOT-private-PID, \
            removed at the end), with fresh tables and nothing attached, so the running \
            data plane neither sees the packets nor changes. --interface picks one of the \
            file's interfaces (it may be left out when the file has one); the interface \
            need not exist, and a missing one stands for the loopback. Forwarding \
            decisions (the load balancer's next hop, NAT) still read this host's routes \
            and neighbours, as the program would where it runs.

            EXIT STATUS: 0; 1 when nothing is applied, the interface is not attached, IN \
            cannot be read (a link type other than Ethernet, a truncated file: the packets \
            before it were replayed), or FILE is not a valid config or cannot be loaded; 64 \
            on a usage error.

            EXAMPLES:
              tcpdump -i eth0 -w in.pcap -c 1000
              xdpctl replay -r in.pcap --interface eth0
              xdpctl replay -r in.pcap --interface lb0 -w out.pcap --json
              xdpctl replay -r yesterday.pcap -f new.json
            """)

    @OptionGroup var kernel: KernelOptions

    @Option(name: .customShort("r"), help: ArgumentHelp("The packets: a pcap or pcapng file; - is standard input.", valueName: "IN"))
    var input: String

    @Option(help: ArgumentHelp("The interface whose XDP program runs them (required without -f, or when the file has several).", valueName: "NAME"))
    var interface: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Run them through this config file's programs, loaded privately, instead of the running ones.", valueName: "FILE"))
    var file: String?

    @Option(name: .customShort("w"), help: ArgumentHelp("Write the packets as the program left them to OUT (pcap); - is standard output.", valueName: "OUT"))
    var write: String?

    @Flag(help: "Print JSON: a list of packets and the summary.")
    var json = false

    func validate() throws {
        if file == nil && interface == nil { throw ValidationError("give --interface (the running program's), or -f FILE") }
    }

    func run() throws {
        let reader: PcapReader
        do { reader = try PcapReader(input) } catch { fail("\(error)") }
        let writer: PcapWriter?
        do { writer = try write.map { try PcapWriter($0) } } catch { fail("\(error)") }
        var dataplane = try kernel.dataplane()
        var interface = self.interface ?? ""
        if let file {
            let text = try ConfigFileOption.read(file)
            let names = try report(file: file) { () throws(DataplaneError) in try Dataplane.validate(text) }.interfaces.map(\.name)
            guard let name = self.interface.map({ names.contains($0) ? $0 : nil }) ?? (names.count == 1 ? names.first : nil) else {
                fail(self.interface.map { "\(file) has no interface \($0) (it has: \(names.joined(separator: ", ")))" }
                     ?? "\(file) has \(names.count) interfaces (\(names.joined(separator: ", "))): name one with --interface")
            }
            interface = name
            dataplane = try report(file: file) { () throws(DataplaneError) in try dataplane.loadPrivately(text) }
        }
        var lines: [JSONValue] = []
        let quiet = write == "-" // the pcap goes to standard output
        let summary = try report {
            defer { if file != nil { dataplane.unload() } }
            return try dataplane.replay(interface: interface, next: reader.next) { p in
                writer?.write(p.output, length: p.length - p.input.count + p.output.count, timestampNs: p.timestampNs)
                let changed = p.output != p.input
                if json {
                    lines.append(.obj(["index": .int(p.index), "verdict": .string(p.verdict), "reason": p.reason.map { .string($0) } ?? .null,
                                       "decided_by": p.decidedBy.map { .string($0) } ?? .null, "in": .string(CapturedPacket.headers(p.input)),
                                       "out": changed ? .string(CapturedPacket.headers(p.output)) : .null]))
                } else if !quiet {
                    let what = ([p.verdict] + (p.reason.map { ["reason \($0)"] } ?? []) + (p.decidedBy.map { [$0] } ?? [])).joined(separator: " ")
                    output("\(p.index) \(what): \(CapturedPacket.headers(p.input))\(changed ? " -> \(CapturedPacket.headers(p.output))" : "")\n")
                }
            }
        }
        do { try writer?.close() } catch { fail("\(error)") }
        func counts(_ d: [String: Int]) -> JSONValue { .object(d.sorted { $0.key < $1.key }.map { JSONMember(key: $0.key, value: .int($0.value)) }) }
        if json {
            output(JSONOutput.render(.obj(["packets": .array(lines), "summary": .obj(["packets": .int(summary.packets), "verdicts": counts(summary.verdicts),
                                                                                      "decided_by": counts(summary.decidedBy)])]), indent: "  ") + "\n")
        } else {
            let text = "replayed \(summary.packets) packet\(summary.packets == 1 ? "" : "s"): "
                + summary.verdicts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + "\n"
                + summary.decidedBy.sorted { $0.value > $1.value || $0.value == $1.value && $0.key < $1.key }.map { "  \($0.value)  \($0.key)\n" }.joined()
            if quiet { FileOutput.standardError.write(text) } else { output(text) }
        }
    }
}
