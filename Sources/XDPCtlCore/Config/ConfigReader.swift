/// The decoding walk. Every function returns nil after recording an error.
final class ConfigReader {
    var errors: [ConfigError] = []

    func fail(_ path: JSONPath, _ message: String) {
        errors.append(ConfigError(path: path.description, message: message))
    }

    func fail(_ path: JSONPath, _ value: JSONValue, expected: String) {
        fail(path, "\(value.excerpt) is not valid; expected \(expected)")
    }

    // MARK: objects

    /// The members of an object, after checking that it is one and has no unknown or repeated keys.
    struct Fields {
        let path: JSONPath
        var members: [JSONMember] = []  // objects here have a handful of keys: a list beats hashing
        subscript(_ key: String) -> JSONValue? { members.first { $0.key == key }?.value }
        func at(_ key: String) -> JSONPath { path.key(key) }
    }

    func fields(_ value: JSONValue, _ path: JSONPath, allowed: [String], required: [String] = []) -> Fields? {
        guard case .object(let members) = value else {
            fail(path, value, expected: "an object with keys \(allowed.joined(separator: ", "))")
            return nil
        }
        var fields = Fields(path: path)
        for m in members {
            if !allowed.contains(m.key) {
                // Shown cut and escaped, as values are (JSONValue.excerpt): a key is any string.
                let shown = JSONValue.string(m.key).excerpt
                fail(path.key(String(shown.dropFirst().dropLast())), "unknown key \(shown); expected one of: \(allowed.joined(separator: ", "))")
            } else if fields[m.key] != nil {
                fail(path.key(m.key), "key \"\(m.key)\" appears more than once")
            } else {
                fields.members.append(m)
            }
        }
        for key in required where fields[key] == nil {
            fail(path.key(key), "missing; this key is required")
        }
        return fields
    }

    // MARK: scalars

    func string(_ value: JSONValue, _ path: JSONPath, expected: String = "a string") -> String? {
        guard case .string(let s) = value else { fail(path, value, expected: expected); return nil }
        return s
    }

    func integer(_ value: JSONValue, _ path: JSONPath, in range: ClosedRange<UInt64>, expected: String) -> UInt64? {
        guard case .number(let text) = value, let n = UInt64(text), range.contains(n) else {
            fail(path, value, expected: expected)
            return nil
        }
        return n
    }

    func choice<E: RawRepresentable & CaseIterable>(_ value: JSONValue, _ path: JSONPath, _: E.Type) -> E? where E.RawValue == String {
        let names = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard let s = string(value, path, expected: "one of \(names)"), let e = E(rawValue: s) else {
            if case .string = value { fail(path, value, expected: "one of \(names)") }
            return nil
        }
        return e
    }

    func list<T>(_ value: JSONValue?, _ path: JSONPath, nonEmpty: Bool = false, what: String,
                 _ item: (JSONValue, JSONPath) -> T?) -> [T]? {
        guard let value else { return [] }
        guard case .array(let items) = value else { fail(path, value, expected: "a list of \(what)"); return nil }
        if nonEmpty && items.isEmpty { fail(path, "the list is empty; expected at least one of \(what) (leave the key out to match all)"); return nil }
        var out: [T] = []
        var ok = true
        for (i, v) in items.enumerated() {
            if let t = item(v, path.index(i)) { out.append(t) } else { ok = false }
        }
        return ok ? out : nil
    }

    func name(_ value: JSONValue?, _ path: JSONPath) -> String? {
        guard let value else { return nil }
        guard let s = string(value, path, expected: "a name (1 to 64 characters)") else { return nil }
        // No control characters: names are printed as they are, and an escape sequence in
        // one would rewrite the operator's terminal.
        let printable = s.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7F && $0 < 0x80 }
            || !s.unicodeScalars.contains { $0.properties.generalCategory == .control || $0.properties.isWhitespace && $0.value != 0x20 }
        guard (1...64).contains(s.utf8.count), printable else {
            fail(path, value, expected: "a name (1 to 64 bytes, printable characters: no line breaks, tabs or control characters)")
            return nil
        }
        return s
    }

    func prefix(_ value: JSONValue, _ path: JSONPath) -> IPPrefix? {
        let expected = "an IPv4 or IPv6 address or prefix, e.g. 10.0.0.0/8 or 2001:db8::/32"
        guard let s = string(value, path, expected: expected) else { return nil }
        do {
            return try IPPrefix(s)
        } catch .hostBits(let masked) {
            fail(path, "\"\(s)\" has bits set past the prefix length; expected \(masked)")
        } catch .length {
            fail(path, value, expected: "a prefix length of 0-32 for IPv4 or 0-128 for IPv6")
        } catch {
            fail(path, value, expected: expected)
        }
        return nil
    }

    func address(_ value: JSONValue?, _ path: JSONPath) -> IPAddress? {
        guard let value else { return nil }
        let expected = "an IPv4 or IPv6 address, e.g. 10.0.0.1 or 2001:db8::1"
        guard let s = string(value, path, expected: expected) else { return nil }
        guard let a = IPAddress(s) else { fail(path, value, expected: expected); return nil }
        return a
    }

    func port(_ value: JSONValue?, _ path: JSONPath) -> UInt16? {
        guard let value else { return nil }
        return integer(value, path, in: 0...65535, expected: "a port number 0-65535").map { UInt16($0) }
    }

    func portRange(_ value: JSONValue, _ path: JSONPath) -> PortRange? {
        let expected = "a port number 0-65535 or a range \"low-high\" such as \"1000-2000\""
        switch value {
        case .number:
            return integer(value, path, in: 0...65535, expected: expected).map { PortRange(UInt16($0), UInt16($0)) }
        case .string(let s):
            let parts = s.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let lo = UInt16(parts[0]), let hi = UInt16(parts[1]) else {
                fail(path, value, expected: expected)
                return nil
            }
            guard lo <= hi else { fail(path, "\"\(s)\" runs backwards; expected low-high with low <= high"); return nil }
            return PortRange(lo, hi)
        default:
            fail(path, value, expected: expected)
            return nil
        }
    }

    func proto(_ value: JSONValue?, _ path: JSONPath) -> IPProtocol? {
        guard let value else { return nil }
        let expected = "\"tcp\", \"udp\", \"icmp\", \"icmpv6\" or a protocol number 0-255"
        switch value {
        case .string(let s):
            if let p = IPProtocol.names.first(where: { $0.0 == s })?.1 { return p }
        case .number:
            if let n = integer(value, path, in: 0...255, expected: expected) { return IPProtocol(UInt8(n)) }
            return nil
        default:
            break
        }
        fail(path, value, expected: expected)
        return nil
    }

    func unique(_ names: [String], _ path: JSONPath, key: String, what: String) {
        var seen: [String: Int] = [:]
        for (i, n) in names.enumerated() {
            if let first = seen[n] {
                fail(path.index(i).key(key), "duplicate \(what) name \"\(n)\" (first used at \(path.index(first).key(key)))")
            } else {
                seen[n] = i
            }
        }
    }
}
