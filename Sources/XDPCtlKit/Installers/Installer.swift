import XDPCtlBPF
import XDPCtlCore

/// One interface's part of a transaction: its plan, and what staging it made and did.
final class InterfaceStage {
    let plan: InterfacePlan
    let dir: String

    // The program (ProgramInstaller).
    /// The interface's program loaded ahead, while the rule sets compiled (a new interface).
    var preload: Preload?
    /// A program instance loaded for this apply.
    var program: BPFObject?
    /// Nodes every firewall table of the program that will run holds.
    var capacity: Int
    /// Pins moved aside (to PIN_old) while a new program instance takes their names.
    var setAside: [String] = []
    /// The running program, to put back if the apply fails after replacing it.
    var previousProgram: OwnedDescriptor?
    /// This apply created the interface's pin directory.
    var createdDirectory = false
    var mode = XDPAttachMode.native
    /// The tc egress program loaded for this apply (the interface has NAT, and its XDP
    /// program is new or it had no tc program), and the one it replaces.
    var tcProgram: BPFObject?
    var previousTcProgram: OwnedDescriptor?

    // The generation.
    /// The root and table maps the new generation goes to.
    var maps: GenerationMaps?
    /// The new generation's tables.
    var tables: [GenerationTable: BPFMap] = [:]
    /// A firewall table of `capacity` nodes: the new generation's, or an empty one the
    /// program is loaded with when the generation has no firewall.
    var firewallTable: BPFMap?
    /// The running generation's root word, to flip back to, and its firewall table.
    var previousWord: UInt32 = 0
    var previousFirewall: BPFMap?

    // How far the transaction got, for the roll-back.
    var prepared = false, flipped = false, attached = false, replaced = false
    var tcAttached = false, tcReplaced = false

    init(_ plan: InterfacePlan, dir: String) {
        self.plan = plan
        self.dir = dir
        capacity = plan.capacity
    }

    var name: String { plan.config.name }
}

/// One feature's part of an apply. The transaction calls each installer in turn at each
/// step; xdpctl_abi.h says what each table and map holds.
protocol Installer {
    /// The feature's tables of the new generation, built where no packet reads them.
    func build(_ stage: InterfaceStage) throws(BPFError) -> [GenerationTable: BPFMap]
    /// Before the flip: the state the new generation reads and the running one ignores
    /// (counters of new slots, new backends, the union of both generations' port filters).
    func prepare(_ stage: InterfaceStage) throws(BPFError)
    /// The apply failed after `prepare`: put back what the running generation reads.
    func undo(_ stage: InterfaceStage)
    /// The apply went through: let go of what only the old generation used.
    func retire(_ stage: InterfaceStage) throws(BPFError)
}

extension Installer {
    func build(_ stage: InterfaceStage) throws(BPFError) -> [GenerationTable: BPFMap] { [:] }
    func prepare(_ stage: InterfaceStage) throws(BPFError) {}
    func undo(_ stage: InterfaceStage) {}
    func retire(_ stage: InterfaceStage) throws(BPFError) {}
}
