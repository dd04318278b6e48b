import SystemPackage

/// A failed libbpf/libxdp/kernel call: what was being done, and the errno the kernel gave.
public struct BPFError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Operation: Sendable, Equatable, CustomStringConvertible {
        case openObject(String)
        case loadObject(String)
        case findProgram(String)
        case findMap(String)
        case createMap(String)
        case mapLookup(String)
        case mapUpdate(String)
        case mapDelete(String)
        case mapMemory(String)
        case pin(String)
        case openPin(String)
        case unpin(String)
        case attachXDP(interface: String, mode: String)
        case attachTC(String)
        case queryXDP(String)
        case linkInfo(String)
        case detach(String)
        case testRun(String)
        case enterNetns(String)
        case lockPinRoot(String)
        case adoptPinRoot(String)
        case lockAgent(String)
        case lockCapture(String)

        public var description: String {
            switch self {
            case .openObject(let s): "open BPF object \(s)"
            case .loadObject(let s): "load BPF object \(s)"
            case .findProgram(let s): "find program \(s)"
            case .findMap(let s): "find map \(s)"
            case .createMap(let s): "create map \(s)"
            case .mapLookup(let s): "look up in map \(s)"
            case .mapUpdate(let s): "update map \(s)"
            case .mapDelete(let s): "delete from map \(s)"
            case .mapMemory(let s): "map the memory of map \(s)"
            case .pin(let s): "pin \(s)"
            case .openPin(let s): "open pinned object \(s)"
            case .unpin(let s): "remove pin \(s)"
            case .attachXDP(let interface, let mode): "attach XDP (\(mode)) to \(interface)"
            case .attachTC(let s): "attach the tc egress program (tcx) to \(s)"
            case .queryXDP(let s): "query XDP on \(s)"
            case .linkInfo(let s): "read link info of \(s)"
            case .detach(let s): "detach from \(s)"
            case .testRun(let s): "test-run program \(s)"
            case .enterNetns(let s): "enter network namespace \(s)"
            case .lockPinRoot(let s): "lock pin root \(s)"
            case .adoptPinRoot(let s): "use pin directory \(s)"
            case .lockAgent(let s): "lock \(s) for the agent"
            case .lockCapture(let s): "lock \(s) for a capture"
            }
        }
    }

    public let operation: Operation
    /// What the kernel (or libbpf) said.
    public let errno: Errno
    /// Lines of the verifier log, filled when a program fails to load.
    public var log: [String] = []

    /// `errno`: an errno value, positive or negated (libbpf's convention).
    public init(_ operation: Operation, errno: Int32, log: [String] = []) {
        self.operation = operation
        self.errno = Errno(rawValue: errno < 0 ? -errno : errno)
        self.log = log
    }

    public var description: String {
        var text = "\(operation): \(errno) [errno \(errno.rawValue)]"
        if let hint { text += " — \(hint)" }
        if let last = log.last(where: { !$0.isEmpty }) { text += "\n  libbpf: \(last)" }
        return text
    }

    /// The domain knowledge behind an errno, in words an operator knows.
    var hint: String? {
        switch (operation, errno) {
        case (.attachXDP(_, "native"), .notSupported), (.attachXDP(_, "native"), .invalidArgument):
            return "the driver lacks native XDP; use xdp_mode \"generic\" or \"auto\""
        case (.attachXDP, .resourceBusy), (.attachXDP, .fileExists):
            return "another XDP program is attached to this interface (see `ip link show`); detach it first"
        case (.attachXDP, .operationNotSupportedByDevice), (.queryXDP, .operationNotSupportedByDevice):
            return "no such interface"
        case (.mapUpdate, .argListTooLong):
            return "the map is full"
        case (.createMap, .noMemory), (.loadObject, .noMemory):
            return "not enough kernel memory for the maps (check `ulimit -l` and the rule count)"
        case (.enterNetns, .noSuchFileOrDirectory):
            return "no such network namespace (see `ip netns list`)"
        case (.lockPinRoot, .timedOut):
            return "another xdpctl command (an apply, down or conntrack flush) held the pin root's lock for longer than --wait allows; nothing was changed"
        case (.lockAgent, .wouldBlock):
            return "another xdpctl agent serves this pin root; stop it first, or give this one another --pin-root"
        case (.lockCapture, .wouldBlock):
            return "another xdpctl capture runs on this pin root; one at a time"
        case (.adoptPinRoot, _):
            return "it must be a directory owned by this user (root) that no one else can write, or anyone could remove the pinned links and detach the firewall; remove it, or give another --pin-root"
        case (_, .notPermitted), (_, .permissionDenied):
            return "needs root (CAP_BPF and CAP_NET_ADMIN)"
        case (.openPin, .noSuchFileOrDirectory):
            return "nothing is pinned there; has `xdpctl apply` run with this --pin-root?"
        default:
            return nil
        }
    }
}

/// Throws for a negative return value (a negative errno, libbpf 1.x convention).
@inline(__always)
func check(_ rc: Int32, _ operation: @autoclosure () -> BPFError.Operation) throws(BPFError) {
    if rc < 0 { throw BPFError(operation(), errno: -rc) }
}

/// Throws for a negative file descriptor; returns it otherwise.
@inline(__always)
func checkFD(_ fd: Int32, _ operation: @autoclosure () -> BPFError.Operation) throws(BPFError) -> Int32 {
    if fd < 0 { throw BPFError(operation(), errno: -fd) }
    return fd
}
