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
}
