import ArgumentParser
import XDPCtlKit

struct Drain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Withdraw this node's VIP announcements and keep the programs serving.",
        discussion: """
            Marks the pin root drained. The running agent (xdpctl agent --bird-include ...) \
            withdraws every announcement through BIRD; the router stops sending new flows \
            here while connections it still sends keep their backends. drain waits for the \
            agent's answer. With no agent running, the mark stays and an agent that starts \
            announces nothing until `drain --undo`. `down` removes the mark with everything else.

            EXIT STATUS: 0 when the agent answered, or none runs; 1 when it did not answer \
            within --timeout (the mark stays as asked; the agent's log says why).

            EXAMPLES:
              xdpctl drain
              xdpctl drain --undo
              xdpctl drain --netns lb1 --pin-root /sys/fs/bpf/xdpctl-lb1 --json
            """)

    @OptionGroup var kernel: KernelOptions

    @Flag(help: "Announce again: take the drain mark away.")
    var undo = false

    @Option(help: ArgumentHelp("Wait this long for the agent to answer.", valueName: "SECONDS"))
    var timeout: Double = 10

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        guard timeout >= 0, timeout.isFinite else { throw ValidationError("--timeout \(timeout): expected a number of seconds, 0 or more") }
    }

    func run() throws {
        let dataplane = try kernel.dataplane()
        let outcome = try report { try dataplane.drain(!undo, wait: timeout) }
        let agent = outcome == .agentAnswered
        if json {
            output("{\"drained\": \(!undo), \"agent\": \(agent ? "\"answered\"" : "null")}\n")
        } else if agent {
            output(undo ? "undrained: the agent announces the VIPs it serves again\n" : "drained: the agent withdrew every announcement; the programs keep serving\n")
        } else {
            output(undo ? "undrained; no agent runs here: one that starts will announce\n" : "drained; no agent runs here: one that starts will announce nothing\n")
        }
    }
}
