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

/// A place in the document, rendered as `a.b[2].c`. Built step by step as the decoder
/// walks, and rendered only when an error names it.
struct JSONPath: CustomStringConvertible, Sendable {
    private enum Step: Sendable { case key(String), index(Int) }
    private final class Node: Sendable {
        let parent: Node?
        let step: Step
        init(_ parent: Node?, _ step: Step) { self.parent = parent; self.step = step }
    }
    private let node: Node?
    static let root = JSONPath(node: nil)
    func key(_ k: String) -> JSONPath { JSONPath(node: Node(node, .key(k))) }
    func index(_ i: Int) -> JSONPath { JSONPath(node: Node(node, .index(i))) }

    var description: String {
        var steps: [Step] = []
        var n = node
        while let current = n { steps.append(current.step); n = current.parent }
        var text = ""
        for step in steps.reversed() {
            switch step {
            case .key(let k): text += text.isEmpty ? k : ".\(k)"
            case .index(let i): text += "[\(i)]"
            }
        }
        return text
    }
}
