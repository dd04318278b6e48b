import Glibc
import Logging
import XDPCtlCore

/// How the agent writes its log to standard error: swift-log's text lines, or one JSON
/// object a line for log collectors.
public enum LogFormat: String, CaseIterable, Sendable {
    case text
    case json

    /// The handler every logger of the process uses.
    public func bootstrap(level: Logger.Level) {
        switch self {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, logLevel: level) }
        }
    }
}

/// One JSON object a line: time (UTC, RFC 3339 with milliseconds), level, label,
/// message, then the metadata's keys. (swift-log ships only the text handler.)
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var members = [
            JSONMember(key: "time", value: .string(Self.now())),
            JSONMember(key: "level", value: .string(event.level.rawValue)),
            JSONMember(key: "label", value: .string(label)),
            JSONMember(key: "message", value: .string(event.message.description)),
        ]
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for key in all.keys.sorted() { members.append(JSONMember(key: key, value: Self.json(all[key]!))) }
        // One write(2) a line: lines of concurrent threads never interleave.
        let text = JSONOutput.render(.object(members)) + "\n"
        _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let s): .string(s)
        case .stringConvertible(let c): .string(c.description)
        case .array(let a): .array(a.map(json))
        case .dictionary(let d): .object(d.keys.sorted().map { JSONMember(key: $0, value: json(d[$0]!)) })
        }
    }

    private static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = tm()
        var seconds = ts.tv_sec
        gmtime_r(&seconds, &t)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let ms = ts.tv_nsec / 1_000_000
        let millis = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(t.tm_year + 1900)-\(two(t.tm_mon + 1))-\(two(t.tm_mday))T\(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec)).\(millis)Z"
    }
}
