/// One problem in the config file: where it is, what was there, what was expected.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    /// JSON path, e.g. `interfaces[0].firewall.rules[3].src[1]`; empty for the document.
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Every problem found in one file (validation does not stop at the first).
public struct ConfigErrors: Error, CustomStringConvertible, Sendable, Equatable {
    public let errors: [ConfigError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// A place in the document, rendered as `a.b[2].c`.
struct JSONPath: CustomStringConvertible {
    private var text: String
    static let root = JSONPath(text: "")
    func key(_ k: String) -> JSONPath { JSONPath(text: text.isEmpty ? k : "\(text).\(k)") }
    func index(_ i: Int) -> JSONPath { JSONPath(text: "\(text)[\(i)]") }
    var description: String { text }
}
