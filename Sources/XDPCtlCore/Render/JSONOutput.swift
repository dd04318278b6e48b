/// Minimal JSON output for the renderers: stable key order, escaped strings, written
/// into one byte buffer (`stats --json` at 100,000 rules renders 300,000 values).
public enum JSONOutput {
    public static func string(_ s: String) -> String {
        var out: [UInt8] = []
        write(string: s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Renders a value tree built from dictionaries-as-pairs, arrays, strings, numbers and bools.
    public static func render(_ value: JSONValue, indent: String? = nil) -> String {
        var out: [UInt8] = []
        write(value, indent: indent.map { Array($0.utf8) }, level: 0, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func write(string s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), b]
            case UInt8(ascii: "\\"): out += [b, b]
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(b >> 4)], hex[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func write(_ value: JSONValue, indent: [UInt8]?, level: Int, to out: inout [UInt8]) {
        func pad(_ n: Int) {
            guard let indent else { return }
            out.append(0x0A)
            for _ in 0..<n { out += indent }
        }
        switch value {
        case .null: out += "null".utf8
        case .bool(let b): out += (b ? "true" : "false").utf8
        case .number(let n): out += n.utf8
        case .string(let s): write(string: s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                pad(level + 1)
                write(item, indent: indent, level: level + 1, to: &out)
            }
            if !items.isEmpty { pad(level) }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                pad(level + 1)
                write(string: member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                if indent != nil { out.append(UInt8(ascii: " ")) }
                write(member.value, indent: indent, level: level + 1, to: &out)
            }
            if !members.isEmpty { pad(level) }
            out.append(UInt8(ascii: "}"))
        }
    }
}

extension JSONValue {
    public static func int<T: BinaryInteger>(_ v: T) -> JSONValue { .number(String(v)) }
    public static func obj(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(pairs.map { JSONMember(key: $0.key, value: $0.value) })
    }
}
