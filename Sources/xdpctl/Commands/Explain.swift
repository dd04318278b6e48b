import ArgumentParser
import XDPCtlCore
import XDPCtlKit

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Say what the data plane would do with one packet: the rule, limit and backend.",
        discussion: """
            Describes one packet (--src, --dst, --proto, --sport, --dport, --tcp-flags) and \
            says which firewall rule decides it (its name and number in the list) or that \
            the default action does, which rate limit would charge it, and, when it is to a \
            VIP, which load balancer takes it and which backend a new flow gets. It works \
            these out with the data path's own walks over the compiled tables, the limits in \
            order and the Maglev table, without sending anything.

            With --interface alone it explains the running config of that interface (the \
            rule slots and the backends health checks hold down, as they are now). With -f \
            FILE it explains the file's config, loaded nowhere; --interface then picks the \
            interface when the file has several.

            EXIT STATUS: 0; 1 when nothing is applied, the interface is unknown, or the file \
            is not a valid config; 64 on a usage error.

            EXAMPLES:
              xdpctl explain --interface eth0 --src 198.51.100.7 --dst 203.0.113.10 --proto tcp --sport 40000 --dport 22
              xdpctl explain -f new.json --src 2001:db8::7 --dst 2001:db8::10 --proto udp --sport 5000 --dport 53 --json
            """)

    @OptionGroup var kernel: KernelOptions

    @Option(name: .shortAndLong, help: ArgumentHelp("Explain this config file's rules instead of the running ones.", valueName: "FILE"))
    var file: String?

    @Option(help: ArgumentHelp("The interface (required without -f, or when the file has several).", valueName: "NAME"))
    var interface: String?

    @Option(help: ArgumentHelp("The packet's source address.", valueName: "ADDRESS"))
    var src: String

    @Option(help: ArgumentHelp("The packet's destination address.", valueName: "ADDRESS"))
    var dst: String

    @Option(help: ArgumentHelp("tcp, udp, icmp, icmpv6 or a protocol number.", valueName: "PROTO"))
    var proto = "tcp"

    @Option(help: ArgumentHelp("Source port (TCP and UDP).", valueName: "PORT"))
    var sport: UInt16?

    @Option(help: ArgumentHelp("Destination port (TCP and UDP).", valueName: "PORT"))
    var dport: UInt16?

    @Option(help: ArgumentHelp("The TCP flags it carries, a comma list (fin, syn, rst, psh, ack, urg, ece, cwr), for limits on flags.", valueName: "LIST"))
    var tcpFlags: String?

    @Flag(help: "Print JSON.")
    var json = false

    func packet() throws -> PacketKey {
        guard let s = IPAddress(src) else { throw ValidationError("--src \(src): expected an IPv4 or IPv6 address") }
        guard let d = IPAddress(dst) else { throw ValidationError("--dst \(dst): expected an IPv4 or IPv6 address") }
        guard s.family == d.family else { throw ValidationError("--src \(src) and --dst \(dst): expected addresses of one family") }
        guard let p = IPProtocol(name: proto) else { throw ValidationError("--proto \(proto): expected tcp, udp, icmp, icmpv6 or a number 0-255") }
        if !p.hasPorts && (sport != nil || dport != nil) { throw ValidationError("--sport and --dport need --proto tcp or udp") }
        if p.hasPorts && (sport == nil || dport == nil) { throw ValidationError("--proto \(proto) needs --sport and --dport") }
        return PacketKey(src: s, dst: d, proto: p.number, srcPort: p.hasPorts ? sport : nil, dstPort: p.hasPorts ? dport : nil)
    }

    func flags() throws -> UInt8 {
        try (tcpFlags ?? "").split(separator: ",").reduce(0) { bits, name in
            guard let f = TCPFlag(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--tcp-flags \(name): expected a comma list of \(TCPFlag.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return bits | f.bit
        }
    }

    func validate() throws {
        _ = try packet()
        _ = try flags()
        if file == nil && interface == nil { throw ValidationError("give --interface (the running config's), or -f FILE") }
    }

    func run() throws {
        let key = try packet(), bits = try flags()
        let explanation: Explanation
        if let file {
            let text = try ConfigFileOption.read(file)
            let config = try report(file: file) { () throws(DataplaneError) in try Dataplane.validate(text) }
            let names = config.interfaces.map(\.name)
            guard let iface = interface.map({ name in config.interfaces.first { $0.name == name } }) ?? (config.interfaces.count == 1 ? config.interfaces.first : nil) else {
                fail(interface.map { "\(file) has no interface \($0) (it has: \(names.joined(separator: ", ")))" }
                     ?? "\(file) has \(names.count) interfaces (\(names.joined(separator: ", "))): name one with --interface")
            }
            explanation = try report(file: file) { () throws(DataplaneError) in
                do throws(CapacityError) { return try Explainer(iface).explain(key, tcpFlags: bits) } catch {
                    throw .refused([ConfigError(path: "interfaces", message: error.message)])
                }
            }
        } else {
            let dataplane = try kernel.dataplane()
            explanation = try report { try dataplane.explain(key, tcpFlags: bits, interface: interface!) }
        }
        output(json ? explanation.json : explanation.text)
    }
}
