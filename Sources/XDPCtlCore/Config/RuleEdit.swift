/// A change between two config files that stays inside one firewall's rule list: the
/// rules at `replaced` of interface `interface` in the old file became the rules the new
/// file holds in `newBytes`; every other byte is the same. Found by comparing the files'
/// bytes and walking the old file's structure, without decoding either: an apply of
/// one changed rule in 100,000 then decodes and compiles only what changed.
public struct RuleEdit: Sendable, Equatable {
    /// The interface's position in `interfaces`.
    public var interface: Int
    /// Rule positions in the old file's list.
    public var replaced: Range<Int>
    /// The replaced rules' bytes in the old file, and their successors' in the new one.
    public var oldBytes: Range<Int>
    public var newBytes: Range<Int>

    /// nil when the files differ anywhere else (or not at all), or the old file's rule
    /// lists cannot be found (a key spelled with escapes, say): apply decodes everything then.
    public init?(from old: String, to new: String) {
        var old = old, new = new
        guard let edit = old.withUTF8({ o in new.withUTF8 { n in Self.find(o, n) } }) else { return nil }
        self = edit
    }

    init(interface: Int, replaced: Range<Int>, oldBytes: Range<Int>, newBytes: Range<Int>) {
        self.interface = interface
        self.replaced = replaced
        self.oldBytes = oldBytes
        self.newBytes = newBytes
    }

    static func find(_ old: UnsafeBufferPointer<UInt8>, _ new: UnsafeBufferPointer<UInt8>) -> RuleEdit? {
        let shorter = min(old.count, new.count)
        var prefix = 0
        while prefix + 8 <= shorter, old.word(prefix) == new.word(prefix) { prefix += 8 }
        while prefix < shorter && old[prefix] == new[prefix] { prefix += 1 }
        guard prefix < old.count || prefix < new.count else { return nil } // the same bytes
        var suffix = 0
        while suffix + 8 <= shorter - prefix, old.word(old.count - suffix - 8) == new.word(new.count - suffix - 8) { suffix += 8 }
        while suffix < shorter - prefix && old[old.count - 1 - suffix] == new[new.count - 1 - suffix] { suffix += 1 }
        let changeEnd = old.count - suffix // the old file's changed bytes are prefix..<changeEnd
        guard let (i, list) = RuleListScanner(bytes: old).list(containing: prefix..<changeEnd) else { return nil }
        let spans = list.spans
        // The rules the change touches, one more on each side, so both ends fall on rule
        // boundaries that the new file shares (a comma may go or come with a rule).
        var first = spans.firstIndex { $0.upperBound >= prefix } ?? spans.count
        var last = (spans.lastIndex { $0.lowerBound <= changeEnd } ?? -1)
        first = max(first - 1, 0)
        last = min(last + 1, spans.count - 1)
        var start = list.open + 1, end = list.close
        if first <= last, spans[first].lowerBound <= prefix, spans[last].upperBound >= changeEnd {
            start = spans[first].lowerBound
            end = spans[last].upperBound
        } else {
            guard list.complete else { return nil }
            (first, last) = (0, spans.count - 1) // the whole list
        }
        let newEnd = new.count - (old.count - end)
        guard newEnd >= start else { return nil }
        return RuleEdit(interface: i, replaced: first..<last + 1, oldBytes: start..<end, newBytes: start..<newEnd)
    }

    /// The rules a file holds in `bytes` (the elements of a rule list, comma-separated),
    /// decoded and checked as the full decoder checks them; nil when they are not valid
    /// (the full decoder then says why, with the place).
    public static func rules(_ text: String, _ bytes: Range<Int>) -> [FirewallRule]? {
        var text = text
        return text.withUTF8 { all -> [FirewallRule]? in
            var doc: [UInt8] = [UInt8(ascii: "[")]
            doc += all[bytes]
            doc.append(UInt8(ascii: "]"))
            return try? ConfigDecoder.rules(bytes: doc)
        }
    }
}

/// Walks a config file's JSON structure without building it, to find where each
/// interface's firewall rules lie.
struct RuleListScanner {
    let bytes: UnsafeBufferPointer<UInt8>

    struct RuleList {
        /// Offsets of the list's brackets (close: -1 until reached), and of its rules.
        var open: Int
        var close = -1
        var spans: [Range<Int>] = []
        /// Whether the walk reached the list's end.
        var complete: Bool { close >= 0 }
    }

    /// The interface whose rule list holds every byte of `change` strictly inside its
    /// brackets, and that list, walked until two rules past the change (or to its end).
    func list(containing change: Range<Int>) -> (Int, RuleList)? {
        var found: (Int, RuleList)?
        var interface = 0
        _ = object(at: 0) { key, at in
            guard key == "interfaces" else { return skip(at) }
            return array(at: at) { at in
                defer { interface += 1 }
                return object(at: at) { key, at in
                    guard key == "firewall", found == nil else { return skip(at) }
                    return object(at: at) { key, at in
                        guard key == "rules" else { return skip(at) }
                        var list = RuleList(open: at)
                        var past = 0
                        let end = array(at: at, stop: { past >= 2 }) { at in
                            guard let end = skip(at) else { return nil }
                            list.spans.append(at..<end)
                            if at >= change.upperBound { past += 1 }
                            return end
                        }
                        guard let end else { return nil }
                        if bytes[end - 1] == UInt8(ascii: "]") { list.close = end - 1 }
                        if list.open < change.lowerBound, list.complete ? change.upperBound <= list.close : past >= 1 {
                            found = (interface, list)
                            return nil // the walk ends here
                        }
                        return end
                    }
                }
            }
        }
        return found
    }

    func space(_ i: Int) -> Int {
        var i = i
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        return i
    }

    /// The object at `i`: `member` reads each member's value (from its offset, given the
    /// key as plain text; a key with an escape reads as "\" and matches nothing) and
    /// returns where it ends. Returns where the object ends, or nil when it is not one;
    /// once a member's reader stops the walk (an offset inside the value), so does this.
    func object(at i: Int, _ member: (String, Int) -> Int?) -> Int? {
        var i = space(i)
        guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { return nil }
        i = space(i + 1)
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { return i + 1 }
        while true {
            let start = i + 1
            guard let keyEnd = string(i) else { return nil }
            let raw = UnsafeBufferPointer(rebasing: bytes[start..<keyEnd - 1])
            let key = raw.contains(UInt8(ascii: "\\")) ? "\\" : String(decoding: raw, as: UTF8.self)
            i = space(keyEnd)
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":"), let valueEnd = member(key, space(i + 1)) else { return nil }
            i = space(valueEnd)
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: "}") { return i + 1 }
            guard bytes[i] == UInt8(ascii: ",") else { return nil }
            i = space(i + 1)
        }
    }

    /// The array at `i`, read element by element until `stop` says so; returns where it
    /// ends (or where the walk stopped).
    func array(at i: Int, stop: () -> Bool = { false }, _ element: (Int) -> Int?) -> Int? {
        var i = space(i)
        guard i < bytes.count, bytes[i] == UInt8(ascii: "[") else { return nil }
        i = space(i + 1)
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { return i + 1 }
        while true {
            guard let end = element(i) else { return nil }
            i = space(end)
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: "]") { return i + 1 }
            guard bytes[i] == UInt8(ascii: ",") else { return nil }
            if stop() { return i }
            i = space(i + 1)
        }
    }

    /// Where the string at `i` ends.
    func string(_ i: Int) -> Int? {
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
        var i = i + 1
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "\""): return i + 1
            case UInt8(ascii: "\\"): i += 2
            default: i += 1
            }
        }
        return nil
    }

    /// Where the value at `i` ends; nested containers by counting brackets outside strings.
    func skip(_ i: Int) -> Int? {
        var i = space(i)
        guard i < bytes.count else { return nil }
        switch bytes[i] {
        case UInt8(ascii: "\""):
            return string(i)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "\""):
                    guard let end = string(i) else { return nil }
                    i = end
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return i + 1 }
                default: break
                }
                i += 1
            }
            return nil
        default:
            // Numbers and literals run to the next delimiter.
            let start = i
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09: return i > start ? i : nil
                default: i += 1
                }
            }
            return i > start ? i : nil
        }
    }
}

private extension UnsafeBufferPointer<UInt8> {
    /// The 8 bytes at `offset`, for comparing files a word at a time.
    func word(_ offset: Int) -> UInt64 { UnsafeRawPointer(baseAddress! + offset).loadUnaligned(as: UInt64.self) }
}
