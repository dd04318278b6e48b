import XDPCtlBPF
import XDPCtlCore

/// Everything a command can fail with, each naming the place and what was expected.
public enum DataplaneError: Error, CustomStringConvertible {
    /// The file is not a valid config.
    case config(ConfigErrors)
    /// The file is valid, but asks for something this build or this machine cannot do
    /// (not supported yet, missing interface, over capacity).
    case refused([ConfigError])
    /// The kernel refused.
    case kernel(BPFError)
    /// The pinned state is missing or unreadable.
    case state(String)

    public var description: String {
        switch self {
        case .config(let e): return e.description
        case .refused(let errors): return errors.map(\.description).joined(separator: "\n")
        case .kernel(let e): return e.description
        case .state(let s): return s
        }
    }

    /// The error as commands print it (and the agent logs it): what is wrong with `file`
    /// (nil: "the config"), one problem a line; for the kernel, the last lines of its log.
    public func message(file: String?) -> String {
        let name = file ?? "the config"
        switch self {
        case .config(let e):
            return "\(name) is not a valid xdpctl config:\n" + e.errors.map { "  \($0)" }.joined(separator: "\n")
        case .refused(let errors):
            return "\(name) cannot be applied; nothing was changed:\n" + errors.map { "  \($0)" }.joined(separator: "\n")
        case .kernel(let e):
            let logged = e.log.isEmpty || e.log.count == 1 && e.description.contains(e.log[0])
            return "\(e)\(logged ? "" : "\n" + e.log.suffix(8).map { "  \($0)" }.joined(separator: "\n"))"
        case .state(let s):
            return s
        }
    }
}
