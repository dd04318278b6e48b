import CXDPCtlShims
import Glibc
import Logging
import Synchronization

/// Where libbpf and libxdp messages go: to swift-log, as "xdpctl.libbpf" at debug level
/// (`xdpctl --verbose` shows them), and the last lines are attached to errors. libbpf
/// calls the sink from whichever thread is loading, so the buffer is behind a lock.
public enum BPFLog {
    static let lines = Mutex<[String]>([])
    static let logger = Logger(label: "xdpctl.libbpf")

    /// Installs the sink; with `verbose`, libbpf passes its debug messages too.
    public static func install(verbose: Bool) {
        xdpctl_set_log_sink({ _, line in
            guard let line else { return }
            let text = String(cString: line).trimmingSuffix()
            BPFLog.lines.withLock { lines in
                lines.append(text)
                if lines.count > 200 { lines.removeFirst(100) }
            }
            BPFLog.logger.debug("\(text)")
        }, verbose ? 2 : 1)
    }

    /// Takes the collected lines (used to attach the verifier log to a load error).
    static func drain() -> [String] {
        lines.withLock { lines in
            defer { lines.removeAll() }
            return lines
        }
    }
}

extension String {
    /// Without the line break libbpf ends its messages with.
    func trimmingSuffix() -> String {
        var s = Substring(self)
        while s.last == "\n" { s = s.dropLast() }
        return String(s)
    }
}

/// Writes to fd 1/2 without touching the C globals Swift 6 calls unsafe.
public struct FileOutput: Sendable {
    let fd: Int32
    public static let standardOutput = FileOutput(fd: 1)
    public static let standardError = FileOutput(fd: 2)

    public func write(_ text: String) {
        var text = text
        text.withUTF8 { buf in
            var offset = 0
            while offset < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + offset, buf.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
