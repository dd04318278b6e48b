import SystemPackage
import XDPCtlBPF
import XDPCtlKit

/// What stops the agent from starting. Once it serves, nothing does: a failed apply is
/// logged, and the running config keeps serving.
public enum AgentError: Error, CustomStringConvertible {
    /// Another agent holds the pin root, or the lock could not be taken.
    case lock(BPFError)
    /// The file's first apply failed (nothing was changed).
    case firstApply(file: String, DataplaneError)
    /// The config file's directory cannot be watched.
    case watch(String, Errno)
    /// The metrics address is taken or not this host's.
    case listen(String, String)
    /// A system call the agent's loop needs failed.
    case system(String, Errno)
    /// BIRD's include file cannot be written, or `birdc configure` failed.
    case bird(String)

    public var description: String {
        switch self {
        case .lock(let e): "\(e)"
        case .firstApply(let file, let e): e.message(file: file)
        case .watch(let dir, let e): "cannot watch \(dir) for changes to the config file: \(e)"
        case .listen(let address, let why): "cannot serve metrics on \(address): \(why)"
        case .system(let what, let e): "cannot \(what): \(e)"
        case .bird(let why): why
        }
    }
}
