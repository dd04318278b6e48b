/// The counter slot of each firewall rule of an interface, by rule name (slot 0 counts
/// the default action). The state keeps them as lines of text, "slot name", in the rule
/// list's order: `stats` reads the rules' names and counters from them without decoding
/// the config, and an apply that patches a few rules splices those lines without
/// building a table of every name.
public struct RuleSlots: Sendable, Equatable {
    private var table: [String: UInt32]?
    /// The stored form: one "slot name\n" line per rule (names never hold line breaks).
    private var lines: [UInt8]?
    /// The lines follow the rule list (states written before format 3 kept no order).
    public private(set) var ordered = false

    public init(_ table: [String: UInt32] = [:]) { self.table = table }
    init(lines: ArraySlice<UInt8>, ordered: Bool) {
        self.lines = Array(lines)
        self.ordered = ordered
    }

    /// The slots of `rules`, in their order.
    public init(_ rules: [String], slots: [String: UInt32]) {
        var out: [UInt8] = []
        out.reserveCapacity(rules.count * 24)
        for name in rules { Self.append(slots[name]!, name.utf8, to: &out) }
        self.init(lines: out[...], ordered: true)
    }

    /// Every rule's slot (decoded from the text on each call: keep it for repeated lookups).
    public var byName: [String: UInt32] {
        if let table { return table }
        var out: [String: UInt32] = [:]
        out.reserveCapacity(count)
        forEachLine { slot, name, _ in out[String(decoding: name, as: UTF8.self)] = slot }
        return out
    }

    /// Each rule's name and slot, in the rule list's order when `ordered`.
    public var inOrder: [(name: String, slot: UInt32)] {
        if let table { return table.sorted { $0.value < $1.value }.map { ($0.key, $0.value) } }
        var out: [(name: String, slot: UInt32)] = []
        out.reserveCapacity(count)
        forEachLine { slot, name, _ in out.append((String(decoding: name, as: UTF8.self), slot)) }
        return out
    }

    public var count: Int { table?.count ?? lines!.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) } }

    /// The stored form.
    var text: [UInt8] {
        if let lines { return lines }
        var out: [UInt8] = []
        out.reserveCapacity(table!.count * 24)
        for (name, slot) in table! { Self.append(slot, name.utf8, to: &out) }
        return out
    }

    public static func == (a: RuleSlots, b: RuleSlots) -> Bool { a.byName == b.byName }

    /// The slots after the rules at positions `replaced` became `added`, as
    /// InterfaceState.assignSlots gives them: a name the edit keeps keeps its slot, the
    /// replaced names not added again give theirs up, and new names take the lowest slots
    /// that neither the old nor the new list uses. Returns the slots of the `added` names
    /// too, and the fresh ones; nil when the lines keep no order, `replaced` is not in
    /// the list, or an added name is used outside the edit (names are unique in a list).
    public func replacing(_ replaced: Range<Int>, with added: [String]) -> (slots: RuleSlots, added: [String: UInt32], fresh: [UInt32])? {
        guard ordered, let lines else { return nil }
        let addedNames = Set(added)
        // Only names as long as an added one can clash with one; the others go unread.
        let lengths = Set(added.map(\.utf8.count))
        var free = InterfaceState.FreeSlots(used: [])
        var editSlots: [String: UInt32] = [:]
        var index = 0, start = lines.count, end = lines.count, clash = false
        forEachLine { slot, name, line in
            free.mark(slot)
            if index == replaced.lowerBound { start = line.lowerBound }
            if index == replaced.upperBound { end = line.lowerBound }
            if replaced.contains(index) {
                editSlots[String(decoding: name, as: UTF8.self)] = slot
            } else if lengths.contains(name.count), addedNames.contains(String(decoding: name, as: UTF8.self)) {
                clash = true
            }
            index += 1
        }
        guard !clash, replaced.upperBound <= index else { return nil }
        if replaced.isEmpty { end = start }
        var slots: [String: UInt32] = [:]
        var spliced = Array(lines[..<start])
        spliced.reserveCapacity(lines.count + added.count * 24)
        for name in added {
            let slot = editSlots[name] ?? free.take()
            slots[name] = slot
            Self.append(slot, name.utf8, to: &spliced)
        }
        spliced += lines[end...]
        return (RuleSlots(lines: spliced[...], ordered: true), slots, free.taken)
    }

    /// Calls `body` with each line's slot, name bytes and place (newline included).
    private func forEachLine(_ body: (UInt32, UnsafeBufferPointer<UInt8>, Range<Int>) -> Void) {
        lines!.withUnsafeBufferPointer { bytes in
            var i = 0
            while i < bytes.count {
                let lineStart = i
                var slot: UInt32 = 0
                while i < bytes.count, bytes[i] != UInt8(ascii: " ") {
                    slot = slot &* 10 &+ UInt32(bytes[i] &- UInt8(ascii: "0"))
                    i += 1
                }
                let start = i + 1
                var end = start
                while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
                body(slot, UnsafeBufferPointer(rebasing: bytes[min(start, end)..<end]), lineStart..<min(end + 1, bytes.count))
                i = end + 1
            }
        }
    }

    private static func append(_ slot: UInt32, _ name: some Collection<UInt8>, to out: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = slot, count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat { d[9 - count] = UInt8(ascii: "0") + UInt8(n % 10); n /= 10; count += 1 } while n > 0
            out += d[(10 - count)...]
        }
        out.append(UInt8(ascii: " "))
        out += name
        out.append(UInt8(ascii: "\n"))
    }
}
