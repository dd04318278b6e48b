import ArgumentParser

@main
struct XDPCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xdpctl",
        abstract: "Program the xdpctl XDP data plane: firewall, rate limits, L4 load balancing, counters.",
        discussion: """
            xdpctl reads one JSON config file (docs/config.md), validates it, and makes the kernel \
            match it: XDP programs attached to every interface the file names, rule tables \
            compiled and swapped in atomically, counters per interface, rule and CPU.

            Everything it sets up is pinned under the pin root (default /sys/fs/bpf/xdpctl), \
            so any later command, from any process, sees the same state.

            EXIT STATUS: 0 on success; 1 when the input is invalid or the kernel refused \
            (nothing changed); 64 on a usage error.

            EXAMPLES:
              xdpctl validate -f /etc/xdpctl.json
              xdpctl diff -f /etc/xdpctl.json
              xdpctl apply -f /etc/xdpctl.json
              xdpctl stats --json --interface eth0
              xdpctl conntrack --json
              xdpctl status --netns lab
              xdpctl down
            """,
        subcommands: [Validate.self, Diff.self, Apply.self, Status.self, Stats.self, Conntrack.self, Capture.self, Replay.self, Explain.self, Drain.self, Down.self, AgentCommand.self]
    )
}
