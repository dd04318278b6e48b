/// The counter slot of each firewall rule of an interface, by rule name (slot 0 counts
/// the default action). The state keeps them as lines of text, "slot name"; an apply
/// that patches a few rules edits those lines without building a table of every name.
public struct RuleSlots: Sendable, Equatable {
    private var table: [String: UInt32]?
    /// The stored form: one "slot name\n" line per rule (names never hold line breaks).
    private var lines: [UInt8]?

    public init(_ table: [String: UInt32] = [:]) { self.table = table }
    init(lines: ArraySlice<UInt8>) { self.lines = Array(lines) }

    /// Every rule's slot (decoded from the text on each call: keep it for repeated lookups).
    public var byName: [String: UInt32] {
        if let table { return table }
        var out: [String: UInt32] = [:]
        out.reserveCapacity(count)
        forEachLine { slot, name, _ in out[String(decoding: name, as: UTF8.self)] = slot }
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

    /// The slots after an edit of part of the rule list, as InterfaceState.assignSlots
    /// gives them: `removed` names not `added` again give theirs up, the others keep
    /// theirs, and new names take the lowest slots that neither the old nor the new list
    /// uses. Returns the slots of the `added` names too, and the fresh ones; nil when an
    /// added name is already used outside the edit (names are unique in a rule list).
    public func replacing(_ removed: [String], with added: [String]) -> (slots: RuleSlots, added: [String: UInt32], fresh: [UInt32])? {
        let addedNames = Set(added), removedNames = Set(removed)
        let gone = removedNames.subtracting(addedNames)
        var existing: [String: UInt32] = [:]
        var free = InterfaceState.FreeSlots(used: [])
        var kept: [UInt8] = []
        if let table {
            for (name, slot) in table {
                free.mark(slot)
                if addedNames.contains(name) { existing[name] = slot }
            }
        } else {
            // Only names as long as a changed one can be one; the lines of the others are
            // copied in runs, unread.
            let lengths = Array(Set((addedNames.union(removedNames)).map(\.utf8.count)))
            kept.reserveCapacity(lines!.count)
            var run = 0
            forEachLine { slot, name, line in
                free.mark(slot)
                guard lengths.contains(name.count) else { return }
                let text = String(decoding: name, as: UTF8.self)
                if addedNames.contains(text) { existing[text] = slot }
                if gone.contains(text) {
                    kept += lines![run..<line.lowerBound]
                    run = line.upperBound
                }
            }
            kept += lines![run...]
        }
        guard existing.keys.allSatisfy(removedNames.contains) else { return nil }
        var slots = existing
        for name in added where slots[name] == nil { slots[name] = free.take() }
        var result = self
        if var table {
            for name in gone { table[name] = nil }
            table.merge(slots) { $1 }
            result.table = table
        } else {
            for name in added where existing[name] == nil { Self.append(slots[name]!, name.utf8, to: &kept) }
            result.lines = kept
        }
        return (result, slots, free.taken)
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
