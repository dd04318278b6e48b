import ArgumentParser
import Glibc
import Synchronization
import SystemPackage
import XDPCtlBPF
import XDPCtlCore
import XDPCtlKit

/// Set by SIGINT or SIGTERM: the capture stops at its next look (every 100 ms).
private let stopRequested = Atomic<Bool>(false)

struct Capture: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture packets as the programs leave them, with the verdict and what decided it.",
        discussion: """
            While it runs, the XDP and tc programs copy each packet that passes the filter \
            options (--interface, --verdict, --reason, --rule) into a ring buffer, with its \
            hook, verdict, drop reason and the firewall rule, rate limit or backend that \
            decided it; FILTER, a tcpdump expression compiled by libpcap, selects among \
            those. A packet is recorded as the program left it: rewritten by NAT or the \
            load balancer, for the verdicts that send it on. With no capture running, a \
            packet pays one check.

            With -w FILE (or -w - for standard output) it writes pcapng, each packet on \
            its interface and with a comment such as "xdp drop reason firewall rule \
            block-ssh", which `tcpdump -r` reads and `tshark -r FILE -T fields -e \
            frame.comment` shows. Without -w it prints a line per packet.

            A flood cannot starve the data plane: each CPU records at most --rate packets \
            a second (bursts of a tenth of it). Packets over that, and packets lost to a \
            full ring, are counted and reported at the end, on standard error. It stops \
            after -c packets, after --duration, or on SIGINT or SIGTERM. One capture runs \
            per pin root at a time.

            EXIT STATUS: 0 when it stopped as asked; 1 when nothing is applied, a name \
            does not resolve, or another capture runs; 64 on a usage error (a bad filter \
            expression included).

            EXAMPLES:
              xdpctl capture --interface eth0 --verdict drop -c 100
              xdpctl capture --interface eth0 --rule block-ssh -w ssh.pcapng
              xdpctl capture --reason rate_limit --duration 10 -w - 'icmp or icmp6' | tshark -r -
            """)

    @OptionGroup var kernel: KernelOptions

    @Option(help: ArgumentHelp("Only packets of this interface (default: every attached one).", valueName: "NAME"))
    var interface: String?

    @Option(help: ArgumentHelp("Only these verdicts: a comma list of aborted, drop, pass, tx, redirect, or all.", valueName: "LIST"))
    var verdict = "all"

    @Option(help: ArgumentHelp("Only drops for these reasons: a comma list of firewall, rate_limit, malformed, no_backend, nat_no_port.", valueName: "LIST"))
    var reason: String?

    @Option(help: ArgumentHelp("Only packets a firewall rule, rate limit or load balancer of this name decided (needs --interface).", valueName: "NAME"))
    var rule: String?

    @Option(name: .customShort("c"), help: ArgumentHelp("Stop after N packets.", valueName: "N"))
    var count: Int?

    @Option(help: ArgumentHelp("Stop after this long.", valueName: "SECONDS"))
    var duration: Double?

    @Option(help: ArgumentHelp("Bytes of each packet to keep (1 to \(CaptureRequest.maxSnaplen)).", valueName: "BYTES"))
    var snaplen = CaptureRequest.maxSnaplen

    @Option(help: ArgumentHelp("Packets each CPU may record a second.", valueName: "N"))
    var rate: UInt64 = 20_000

    @Option(name: .customShort("w"), help: ArgumentHelp("Write pcapng to FILE; - is standard output.", valueName: "FILE"))
    var write: String?

    @Argument(help: ArgumentHelp("A pcap filter expression (tcpdump's syntax).", valueName: "FILTER"))
    var filter: [String] = []

    func validate() throws {
        let verdicts = Set(InterfaceStats.verdictNames), reasons = Set(InterfaceStats.reasonNames.dropFirst())
        for v in list(verdict) where v != "all" && !verdicts.contains(v) {
            throw ValidationError("--verdict \(v): expected a comma list of \(InterfaceStats.verdictNames.joined(separator: ", ")), or all")
        }
        for r in list(reason ?? "") where !reasons.contains(r) {
            throw ValidationError("--reason \(r): expected a comma list of \(InterfaceStats.reasonNames.dropFirst().joined(separator: ", "))")
        }
        if let count, count < 1 { throw ValidationError("-c \(count): expected a whole number, 1 or more") }
        if let duration, !(duration > 0 && duration.isFinite) { throw ValidationError("--duration \(duration): expected a number of seconds above 0") }
        guard (1...CaptureRequest.maxSnaplen).contains(snaplen) else { throw ValidationError("--snaplen \(snaplen): expected 1 to \(CaptureRequest.maxSnaplen)") }
        guard rate >= 1 else { throw ValidationError("--rate \(rate): expected 1 or more") }
        if rule != nil && interface == nil { throw ValidationError("--rule needs --interface: names are per interface") }
        if !filter.isEmpty {
            do { _ = try PacketFilter(filter.joined(separator: " "), snaplen: snaplen) } catch { throw ValidationError("\(error)") }
        }
    }

    private func list(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() throws {
        let dataplane = try kernel.dataplane()
        var request = CaptureRequest()
        request.interface = interface
        let verdicts = list(verdict)
        request.verdicts = verdicts.contains("all") ? [] : Set(verdicts)
        // A reason implies a drop; every other verdict has reason "none".
        request.reasons = reason.map { Set(list($0)) } ?? []
        if reason != nil && request.verdicts.isEmpty { request.verdicts = ["drop"] }
        request.rule = rule
        (request.snaplen, request.rate, request.burst) = (snaplen, rate, max(rate / 10, 1))
        let expression = filter.isEmpty ? nil : try PacketFilter(filter.joined(separator: " "), snaplen: snaplen)

        var writer: PcapNGWriter?
        if let write {
            let fd: FileDescriptor
            do {
                fd = write == "-" ? .standardOutput : try FileDescriptor.open(FilePath(write), .writeOnly, options: [.create, .truncate, .closeOnExec],
                                                                             permissions: [.ownerReadWrite, .groupRead, .otherRead])
            } catch {
                fail("cannot write \(write): \(error)")
            }
            writer = try PcapNGWriter(snaplen: snaplen) { bytes in _ = try fd.writeAll(bytes) }
        }
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        for s in [SIGINT, SIGTERM] {
            signal(s) { _ in stopRequested.store(true, ordering: .relaxed) }
            sigaddset(&stopSignals, s)
        }
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil) // a parent may have blocked them
        let deadline = duration.map { ContinuousClock.now + .milliseconds(Int64($0 * 1000)) }
        var written = 0
        var failure: (any Error)?
        let summary = try report {
            try dataplane.capture(request, filter: expression,
                                  started: { FileOutput.standardError.write("xdpctl capture: capturing on \(interface ?? "every interface"); SIGINT stops\n") },
                                  stop: { stopRequested.load(ordering: .relaxed) || deadline.map { ContinuousClock.now >= $0 } ?? false }) { packet in
                do {
                    if writer != nil {
                        try writer!.append(interface: packet.interface, timestampNs: packet.timestampNs, data: packet.data[...],
                                           length: packet.length, comments: [packet.comment])
                    } else {
                        output(packet.line + "\n")
                    }
                } catch {
                    failure = error
                    return false
                }
                written += 1
                return count.map { written < $0 } ?? true
            }
        }
        if let failure { fail("cannot write \(write ?? "the capture"): \(failure)") }
        FileOutput.standardError.write("xdpctl capture: \(summary.written) packet\(summary.written == 1 ? "" : "s") written"
            + (summary.filteredOut > 0 ? ", \(summary.filteredOut) left out by the filter" : "")
            + ", \(summary.limited) over the rate bound, \(summary.lost) lost to a full ring\n")
    }
}
