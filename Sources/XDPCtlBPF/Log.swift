import CXDPCtlShims
import Glibc
import Synchronization

/// Where libbpf and libxdp messages go. By default they are kept quiet and the last
/// lines are attached to errors; `--verbose` prints them. libbpf calls the sink from
/// whichever thread is loading, so the buffer is behind a lock.
public enum BPFLog {
    static let state = Mutex<(lines: [String], echo: Bool)>(([], false))

    /// Installs the sink; with `verbose`, messages up to debug level are printed to stderr.
    public static func install(verbose: Bool) {
        state.withLock { $0.echo = verbose }
        xdpctl_set_log_sink({ _, line in
            guard let line else { return }
            let text = String(cString: line)
            let echo = BPFLog.state.withLock { s in
                s.lines.append(text)
                if s.lines.count > 200 { s.lines.removeFirst(100) }
                return s.echo
            }
            if echo { FileOutput.standardError.write("libbpf: \(text)\n") }
        }, verbose ? 2 : 1)
    }

    /// Takes the collected lines (used to attach the verifier log to a load error).
    static func drain() -> [String] {
        state.withLock { s in
            defer { s.lines.removeAll() }
            return s.lines
        }
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
