import ArgumentParser
import Logging
import XDPCtlAgent
import XDPCtlKit

extension LogFormat: ExpressibleByArgument {}

struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Apply a config file and keep it applied: reload on change, serve Prometheus metrics.",
        discussion: """
            Applies FILE as `xdpctl apply` does, then stays in the foreground (run it under \
            systemd: the package installs xdpctl.service). It applies FILE \
            again when the file changes (its directory is watched with inotify; editors that \
            write a new file and rename it onto FILE are seen) and on SIGHUP. A file that \
            does not validate or apply is logged with its path and the errors, and the \
            running config keeps serving.

            With --metrics-address, GET /metrics answers in Prometheus's text format: every \
            counter of `stats --json`, connection-table fill, map memory, the generation, and \
            the agent's applies (count by result, a duration histogram).

            ANNOUNCEMENTS: with --bird-include and --bird-socket, the agent writes the VIPs \
            to announce into FILE as two BIRD `protocol static` blocks, xdpctl4 and xdpctl6 \
            (one /32 or /128 blackhole route each), then runs `birdc -s PATH configure`; \
            bird.conf includes FILE and exports those routes over BGP with next hop self. A \
            VIP is announced while an attached interface serves it and one of its backends \
            takes new flows (active, with weight, not down by its health checks); it is \
            withdrawn when none does, when `xdpctl drain` drains the node, before an apply \
            that removes it, and when the agent stops. When BIRD cannot be reached the agent \
            logs it and tries again every 5 s.

            SIGTERM or SIGINT withdraws the announcements, stops the agent and leaves the \
            data plane running, every pin kept: the programs never depend on the agent. One agent serves a pin root: a \
            second one fails at start. `apply`, `down` and `conntrack flush` from other \
            processes still work; they take the pin root's lock, as the agent does for \
            each apply, so the two never interleave (the agent applies FILE again only on \
            its next change or SIGHUP).

            With --netns, the agent works on the interfaces of that namespace and listens \
            there for scrapes; pins stay on the host's bpffs.

            EXIT STATUS: 0 after SIGTERM or SIGINT; 1 when it cannot start (another agent, \
            a first apply that fails, an address in use), nothing changed; 64 on a usage error.

            EXAMPLES:
              xdpctl agent -f /etc/xdpctl.json
              xdpctl agent -f /etc/xdpctl.json --log-format json
              xdpctl agent -f /etc/xdpctl.json --metrics-address '[::1]:9435'
              xdpctl agent -f lab.json --netns lab --pin-root /sys/fs/bpf/xdpctl-lab
              xdpctl agent -f /etc/xdpctl.json --bird-include /etc/bird/xdpctl-vips.conf --bird-socket /run/bird/bird.ctl
            """)

    @OptionGroup var config: ConfigFileOption
    @OptionGroup var kernel: KernelOptions
    @OptionGroup var lock: LockOptions

    @Option(help: ArgumentHelp(
        "Serve GET /metrics on ADDRESS (HOST:PORT, [IPV6]:PORT); \"none\" serves no metrics.",
        discussion: "Default 127.0.0.1:9435. With --netns, the address is the namespace's.",
        valueName: "ADDRESS"))
    var metricsAddress = "127.0.0.1:9435"

    @Option(help: ArgumentHelp(
        "Which firewall rules get series of their own: all, none, or top:N (each interface's N rules with the most packets).",
        discussion: "Default all. At 100,000 rules that is 200,000 series a scrape; top:N keeps Prometheus's load small.",
        valueName: "all|none|top:N"))
    var metricsRules = "all"

    @Option(help: ArgumentHelp(
        "Announce the served VIPs through BIRD: write them into FILE, which bird.conf includes.",
        discussion: "Needs --bird-socket. See ANNOUNCEMENTS above and docs/fleet.md.",
        valueName: "FILE"))
    var birdInclude: String?

    @Option(help: ArgumentHelp("BIRD's control socket, for `birdc -s PATH configure`.", valueName: "PATH"))
    var birdSocket: String?

    @Option(help: ArgumentHelp("Log lines as text or as JSON objects, on standard error.", valueName: "text|json"))
    var logFormat: LogFormat = .text

    func validate() throws {
        guard config.file != "-" else { throw ValidationError("-f -: the agent watches a file; give its path") }
        guard (birdInclude == nil) == (birdSocket == nil) else { throw ValidationError("--bird-include and --bird-socket go together: give both or neither") }
        guard RuleSeries(metricsRules) != nil else { throw ValidationError("--metrics-rules \(metricsRules): expected all, none or top:N (N a whole number, 1 or more)") }
        guard metricsAddress == "none" || MetricsAddress(metricsAddress) != nil else {
            throw ValidationError("--metrics-address \(metricsAddress): expected HOST:PORT, [IPV6]:PORT or none")
        }
    }

    func run() throws {
        logFormat.bootstrap(level: kernel.verbose ? .debug : .info)
        let logger = Logger(label: "xdpctl.agent")
        let dataplane = try kernel.openDataplane()
        lock.configure(dataplane)
        dataplane.onLockWait = { seconds in
            logger.warning("waiting for another xdpctl command to finish under \(dataplane.root.path)", metadata: ["gives_up_after_s": "\(seconds)"])
        }
        dataplane.onRecovery = { logger.warning("\($0)") }
        let agent = Agent(dataplane: dataplane, configPath: config.file,
                          metricsAddress: metricsAddress == "none" ? nil : MetricsAddress(metricsAddress), logger: logger)
        agent.metricsRules = RuleSeries(metricsRules) ?? .all
        if let birdInclude, let birdSocket { agent.bird = BirdTarget(include: birdInclude, socket: birdSocket) }
        do { try agent.run() } catch { fail("\(error)") }
    }
}
