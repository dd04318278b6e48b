import CXDPCtlABI
import Glibc
import SystemPackage
import XDPCtlBPF
import XDPCtlCore

/// The programs' part of an apply: the pin directory, the XDP program instance the plan
/// loads (or the one loaded ahead), the tc egress program of an interface with NAT, and
/// their attachments.
struct ProgramInstaller {
    let root: PinRoot
    /// False in a private load: the XDP program is pinned, and no program attached.
    let attaches: Bool

    /// Before the tables are built: the pin directory, the capacity of the program that
    /// will run, and the running generation's record and firewall table.
    func choose(_ stage: InterfaceStage) throws(BPFError) {
        let dir = stage.dir
        stage.createdDirectory = access(dir, F_OK) != 0 || stage.preload != nil
        if access(dir, F_OK) != 0 && mkdir(dir, 0o700) != 0 { throw BPFError(.pin(dir), errno: errno) }
        if let running = stage.plan.runningSlot, let pinned = try GenerationMaps.pinned(in: dir) {
            stage.previousFirewall = try pinned.table(.firewall, slot: running)
        }
        // A program loaded ahead serves if its tables are as big; else its pins go.
        guard let preload = stage.preload else { return }
        stage.preload = nil
        if let program = preload.program(forCapacity: stage.capacity) {
            stage.program = program
            stage.capacity = preload.capacity
        } else {
            preload.wait()
            try root.removeTree(dir)
            if mkdir(dir, 0o700) != 0 { throw BPFError(.pin(dir), errno: errno) }
        }
    }

    /// After the tables are built: loads the program the plan wants (with the firewall
    /// table as the shape of every table it will get) and opens the maps the new
    /// generation goes to.
    func load(_ stage: InterfaceStage) throws(BPFError) {
        let name = stage.name
        if stage.plan.loadsProgram && stage.program == nil {
            // A program instance with a root and a firewall map of its own (counters and
            // the other table maps are reused from their pins). The running program's root
            // and table pins step aside until commit: it runs on them, untouched, until
            // the link switches programs.
            for pin in [DP_MAP_GEN, DP_MAP_FW].map({ root.map($0, of: name) }) where access(pin, F_OK) == 0 {
                if rename(pin, pin + "_old") != 0 { throw BPFError(.pin(pin), errno: errno) }
                stage.setAside.append(pin)
            }
            stage.program = try Dataplane.ingressProgram(pinRoot: stage.dir, table: stage.firewallTable!,
                                                         pinPaths: Dataplane.sharedPins(root))
        }
        if stage.plan.loadsProgram && stage.plan.keepsLink {
            stage.previousProgram = try XDPLink.program(pinPath: root.link(name))
        }
        let maps = if let program = stage.program { try GenerationMaps(program) } else { try GenerationMaps(pinDirectory: stage.dir) }
        stage.maps = maps
        stage.previousWord = try maps.word()
        // The tc program reads the root and maps pinned now: a new XDP instance's own.
        if stage.plan.nat != nil && (stage.program != nil || access(root.tcLink(name), F_OK) != 0) {
            stage.tcProgram = try BPFObject(.tcEgress, pinRoot: stage.dir, pinPaths: Dataplane.sharedPins(root, Dataplane.sharedByBoth))
        }
    }

    /// After the flip: the new programs run on the interface, each replacing the running
    /// one in one step, or attached anew (`auto` falls back to generic for XDP).
    func attach(_ stage: InterfaceStage) throws(BPFError) {
        guard attaches else { return try stage.program!.pinProgram(DP_PROG_XDP, at: root.program(stage.name)) }
        try attachXDP(stage)
        try attachTC(stage)
    }

    private func attachTC(_ stage: InterfaceStage) throws(BPFError) {
        guard let tc = stage.tcProgram else { return }
        let pin = root.tcLink(stage.name)
        let fd = try tc.programFD(DP_PROG_TC)
        if access(pin, F_OK) == 0, (try? XDPLink.info(pinPath: pin))?.ifindex == UInt32(stage.plan.ifindex) {
            stage.previousTcProgram = try XDPLink.program(pinPath: pin)
            try TCLink.replaceProgram(pinPath: pin, programFD: fd, interface: stage.name)
            stage.tcReplaced = true
            return
        }
        try XDPLink.detach(pinPath: pin, interface: stage.name) // a link left on an interface that is gone
        try TCLink.attach(programFD: fd, ifindex: stage.plan.ifindex, interface: stage.name, pinPath: pin)
        stage.tcAttached = true
    }

    private func attachXDP(_ stage: InterfaceStage) throws(BPFError) {
        let name = stage.name
        if stage.plan.keepsLink {
            stage.mode = XDPAttachMode(rawValue: stage.plan.previous!.mode) ?? .native
            if let program = stage.program {
                try XDPLink.replaceProgram(pinPath: root.link(name), programFD: try program.programFD(DP_PROG_XDP), interface: name)
                stage.replaced = true
            }
            return
        }
        let link = root.link(name)
        try XDPLink.detach(pinPath: link, interface: name)
        let prog = try stage.program!.programFD(DP_PROG_XDP)
        let modes: [XDPAttachMode] = switch stage.plan.config.xdpMode {
        case .native: [.native]
        case .generic: [.generic]
        case .auto: [.native, .generic]
        }
        var lastError: BPFError?
        for mode in modes {
            do {
                try XDPLink.attach(programFD: prog, ifindex: stage.plan.ifindex, interface: name, mode: mode, pinPath: link)
                stage.mode = mode
                stage.attached = true
                return
            } catch {
                lastError = error
                if error.errno == .resourceBusy || error.errno == .fileExists { break }
            }
        }
        throw lastError!
    }

    /// The apply failed: detaches what it attached and puts the running program back, so
    /// the interface runs its old program on its old generation again.
    func undoAttach(_ stage: InterfaceStage) {
        let name = stage.name
        if stage.tcAttached { try? XDPLink.detach(pinPath: root.tcLink(name), interface: name) }
        if stage.tcReplaced, let old = stage.previousTcProgram {
            try? TCLink.replaceProgram(pinPath: root.tcLink(name), programFD: old.raw, interface: name)
        }
        if stage.attached { try? XDPLink.detach(pinPath: root.link(name), interface: name) }
        if stage.replaced, let old = stage.previousProgram {
            try? XDPLink.replaceProgram(pinPath: root.link(name), programFD: old.raw, interface: name)
        }
    }

    /// The apply failed, and the interface runs what it ran before: removes what the
    /// apply pinned and puts back the pins it moved aside.
    func undo(_ stage: InterfaceStage) {
        for pin in stage.setAside {
            unlink(pin)
            rename(pin + "_old", pin)
        }
        stage.preload?.wait()
        if stage.createdDirectory || stage.plan.previous == nil { try? root.removeTree(stage.dir) }
    }

    /// The apply went through: the pins the running program stood on go, and so does the
    /// tc program of an interface that no longer has NAT.
    func retire(_ stage: InterfaceStage) throws(BPFError) {
        for pin in stage.setAside { unlink(pin + "_old") }
        // Maps of older builds, left by a program this apply replaced: ABI 2's firewall
        // map, ABI 3's interface counters, ABI 4's connection tables and NAT counters of
        // the interface, ABI 5's VIP port filter.
        for old in ["dp_fw", "dp_stats", "dp_lb_ct", "dp_lb_half", "dp_ct", "dp_ct_new", "dp_nat_stats", "dp_lb_vports"] {
            unlink(root.map(old, of: stage.name))
        }
        unlink(root.shared("dp_lb_reply"))
        if stage.plan.nat == nil { try XDPLink.detach(pinPath: root.tcLink(stage.name), interface: stage.name) }
    }
}

extension Dataplane {
    /// Loads xdp_ingress (maps pinned under `pinRoot`, or at `pinPaths`) for firewall
    /// tables of `table`'s capacity: the verifier bounds every node offset by it.
    /// `object`: a build of it (the benchmark's without capture).
    public static func ingressProgram(pinRoot: String, table: BPFMap, pinPaths: [String: String] = [:],
                                      object: EmbeddedObject = .xdpIngress) throws(BPFError) -> BPFObject {
        guard let capacity = firewallCapacity(of: table) else { throw BPFError(.createMap("dp_fw_tree"), errno: EINVAL) }
        return try BPFObject(object, pinRoot: pinRoot, innerMaps: [DP_MAP_FW: table], pinPaths: pinPaths,
                             constants: [DP_FW_RODATA: withUnsafeBytes(of: UInt32(capacity)) { Array($0) }])
    }

    /// The maps every interface's programs share, pinned at the pin root: the connection
    /// tables, NAT's rule counters and capture's maps (XDP and tc), and the reply port
    /// filter (XDP).
    static func sharedPins(_ root: PinRoot, _ names: [String] = sharedByBoth + [DP_MAP_LB_RPORTS]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: names.map { ($0, root.shared($0 == DP_MAP_CAPTURE_ON ? DP_PIN_CAPTURE_ON : $0)) })
    }

    static let sharedByBoth = [DP_MAP_CT, DP_MAP_CT_NEW, DP_MAP_NAT_STATS, DP_MAP_CAPTURE, DP_MAP_CAPTURE_STATS, DP_MAP_CAPTURE_RING, DP_MAP_CAPTURE_ON]
}
