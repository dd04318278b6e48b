/// What an apply leaves for later commands (and for the next apply to diff against):
/// the config it applied and, per interface, how it was attached and which counter
/// slot each rule owns. Stored as JSON in a pinned map beside the programs.
public struct DataplaneState: Sendable, Equatable {
    public var generation: UInt64
    public var netns: String?
    /// The applied config file, as given.
    public var configText: String
    public var interfaces: [InterfaceState]

    public init(generation: UInt64, netns: String?, configText: String, interfaces: [InterfaceState]) {
        self.generation = generation
        self.netns = netns
        self.configText = configText
        self.interfaces = interfaces
    }

    public func interface(_ name: String) -> InterfaceState? { interfaces.first { $0.name == name } }
}

public struct InterfaceState: Sendable, Equatable {
    public var name: String
    public var ifindex: Int32
    /// "native" or "generic": what the attach achieved.
    public var mode: String
    /// Counter slot per rule name; slot 0 counts the default action.
    public var slots: RuleSlots
    /// Nodes in the firewall table (0 without a firewall).
    public var firewallNodes: Int
    public var firewallTrees: Int
    /// Patch trees in the firewall table (see FirewallCompiler.patch).
    public var firewallPatchTrees: Int
    /// Nodes every firewall table of the loaded program holds (fixed at load).
    public var firewallCapacity: Int
    /// Bucket and counter slot per rate-limit name.
    public var limitSlots: [String: UInt32]
    /// Counter slot per load-balancer name, and backend slot per backend identity
    /// (LoadBalancerCompiler.backendID).
    public var vipSlots: [String: UInt32]
    public var backendSlots: [String: UInt32]
    /// Counter slot per NAT rule name.
    public var natSlots: [String: UInt32]
    /// What the reports show of the interface's config (nil in states written before
    /// format 3: the reports then decode the config).
    public var summary: InterfaceSummary?

    public init(name: String, ifindex: Int32, mode: String, slots: RuleSlots, firewallNodes: Int, firewallTrees: Int,
                firewallCapacity: Int, limitSlots: [String: UInt32] = [:],
                vipSlots: [String: UInt32] = [:], backendSlots: [String: UInt32] = [:], firewallPatchTrees: Int = 0,
                natSlots: [String: UInt32] = [:], summary: InterfaceSummary? = nil) {
        self.name = name
        self.ifindex = ifindex
        self.mode = mode
        self.slots = slots
        self.firewallNodes = firewallNodes
        self.firewallTrees = firewallTrees
        self.firewallPatchTrees = firewallPatchTrees
        self.firewallCapacity = firewallCapacity
        self.limitSlots = limitSlots
        self.vipSlots = vipSlots
        self.backendSlots = backendSlots
        self.natSlots = natSlots
        self.summary = summary
    }

    /// Slots for `rules`: a rule keeps the slot its name had, a new name takes the lowest
    /// slot neither the old nor the new rule set uses (a slot freed by this apply may
    /// still be counted into by packets of the old generation).
    public static func assignSlots(_ rules: [String], previous: [String: UInt32]) -> (slots: [String: UInt32], fresh: [UInt32]) {
        var slots: [String: UInt32] = [:]
        var free = FreeSlots(used: previous.values)
        for name in rules { slots[name] = previous[name] ?? free.take() }
        return (slots, free.taken)
    }

    /// The lowest slots above 0 that no rule uses.
    struct FreeSlots {
        var used: [UInt64] = [1] // a bit per slot; slot 0 is the default's
        var next: UInt32 = 1
        var taken: [UInt32] = []

        init(used slots: some Sequence<UInt32>) {
            for s in slots { mark(s) }
        }

        func isUsed(_ s: UInt32) -> Bool { Int(s / 64) < used.count && used[Int(s / 64)] & (1 << (s % 64)) != 0 }

        mutating func mark(_ s: UInt32) {
            if Int(s / 64) >= used.count { used += repeatElement(0, count: Int(s / 64) + 1 - used.count) }
            used[Int(s / 64)] |= 1 << (s % 64)
        }

        mutating func take() -> UInt32 {
            while isUsed(next) { next += 1 }
            mark(next)
            taken.append(next)
            return next
        }
    }
}

extension DataplaneState {
    /// Stored form: a JSON header, the rules' counter slots as text (in rule-list order),
    /// then the config file's bytes as they were. Each part is what costs least to write
    /// and read back at 100,000 rules: a config would cost more to escape and parse back
    /// than to copy, and so would 100,000 slots as JSON members.
    public var encoded: [UInt8] {
        let header = Array(json.utf8)
        var slots: [UInt8] = []
        for i in interfaces {
            slots += i.slots.text
            slots.append(UInt8(ascii: "\n")) // an empty line ends an interface's slots (names are never empty)
        }
        var out: [UInt8] = []
        out.reserveCapacity(16 + header.count + slots.count + configText.utf8.count)
        for part in [header, slots] {
            withUnsafeBytes(of: UInt64(part.count).littleEndian) { out += $0 }
            out += part
        }
        out += configText.utf8
        return out
    }

    /// Decodes a stored state; without `config`, leaves `configText` empty (the reports
    /// need only the header and the slots).
    public init(encoded bytes: [UInt8], config: Bool = true) throws(DecodeError) {
        func length(at offset: Int) throws(DecodeError) -> Int {
            guard offset + 8 <= bytes.count else { throw DecodeError.unreadable }
            let n = bytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self))) }
            guard n <= bytes.count - offset - 8 else { throw DecodeError.unreadable }
            return n
        }
        let headerLength = try length(at: 0)
        let header = Array(bytes[8..<8 + headerLength])
        let format: Int = header.starts(with: Array(#"{"format":3"#.utf8)) ? 3 : header.starts(with: Array(#"{"format":2"#.utf8)) ? 2 : 1
        guard format > 1 else {
            // Written before the slots had their own part: they are in the header.
            try self.init(json: header, slots: nil, ordered: false, configText: String(decoding: bytes[(8 + headerLength)...], as: UTF8.self))
            return
        }
        let slotsLength = try length(at: 8 + headerLength)
        let slotsStart = 16 + headerLength
        try self.init(json: header, slots: bytes[slotsStart..<slotsStart + slotsLength], ordered: format >= 3,
                      configText: config ? String(decoding: bytes[(slotsStart + slotsLength)...], as: UTF8.self) : "")
    }

    /// Per interface, the slots of the text form `encoded` writes.
    static func slots(_ text: ArraySlice<UInt8>, ordered: Bool) -> [RuleSlots] {
        var out: [RuleSlots] = []
        var start = text.startIndex, i = text.startIndex
        while i < text.endIndex {
            if text[i] == UInt8(ascii: "\n") && (i == start || text[i - 1] == UInt8(ascii: "\n")) {
                out.append(RuleSlots(lines: text[start..<i], ordered: ordered))
                start = i + 1
            }
            i += 1
        }
        return out
    }

    var json: String {
        JSONOutput.render(.obj([
            "format": .int(3),
            "generation": .int(generation),
            "netns": netns.map { .string($0) } ?? .null,
            "interfaces": .array(interfaces.map { i in
                .obj([
                    "name": .string(i.name), "ifindex": .int(i.ifindex), "mode": .string(i.mode),
                    "firewall_nodes": .int(i.firewallNodes), "firewall_trees": .int(i.firewallTrees),
                    "firewall_patch_trees": .int(i.firewallPatchTrees),
                    "firewall_capacity": .int(i.firewallCapacity),
                    "limit_slots": Self.slotObject(i.limitSlots),
                    "vip_slots": Self.slotObject(i.vipSlots),
                    "backend_slots": Self.slotObject(i.backendSlots),
                    "nat_slots": Self.slotObject(i.natSlots),
                    "summary": i.summary?.json ?? .null,
                ])
            }),
        ]))
    }

    static func slotObject(_ slots: [String: UInt32]) -> JSONValue {
        .object(slots.sorted { $0.value < $1.value }.map { JSONMember(key: $0.key, value: .int($0.value)) })
    }

    public struct DecodeError: Error, CustomStringConvertible {
        public let description: String
        static let unreadable = DecodeError(description: "the pinned xdpctl state is unreadable; run `xdpctl down` and apply again")
    }

    init(json: [UInt8], slots slotText: ArraySlice<UInt8>?, ordered: Bool, configText config: String) throws(DecodeError) {
        let bad = DecodeError.unreadable
        guard let top = try? JSONParser.parse(json) else { throw bad }
        let ruleSlots = slotText.map { Self.slots($0, ordered: ordered) }
        guard let gen = top["generation"]?.integer(UInt64.self), let ifs = top["interfaces"]?.arrayValue else { throw bad }
        var interfaces: [InterfaceState] = []
        guard ruleSlots == nil || ruleSlots!.count == ifs.count else { throw bad }
        for (index, m) in ifs.enumerated() {
            guard let name = m["name"]?.stringValue, let ifindex = m["ifindex"]?.integer(Int32.self),
                  let mode = m["mode"]?.stringValue else { throw bad }
            /// A slot table (`slots` before format 2; limits, VIPs, backends), empty when absent.
            func slotTable(_ key: String, required: Bool = false) throws(DecodeError) -> [String: UInt32] {
                guard let members = m[key]?.membersValue else { if required { throw bad }; return [:] }
                var out: [String: UInt32] = [:]
                for s in members { guard let v = s.value.integer(UInt32.self) else { throw bad }; out[s.key] = v }
                return out
            }
            // Before format 2 the rule slots were a table in the header.
            let slots = if let ruleSlots { ruleSlots[index] } else { RuleSlots(try slotTable("slots", required: true)) }
            func count(_ key: String) -> Int { m[key]?.integer(Int.self) ?? 0 }
            interfaces.append(InterfaceState(name: name, ifindex: ifindex, mode: mode, slots: slots,
                                             firewallNodes: count("firewall_nodes"), firewallTrees: count("firewall_trees"),
                                             firewallCapacity: count("firewall_capacity"),
                                             limitSlots: try slotTable("limit_slots"),
                                             vipSlots: try slotTable("vip_slots"), backendSlots: try slotTable("backend_slots"),
                                             firewallPatchTrees: count("firewall_patch_trees"),
                                             natSlots: try slotTable("nat_slots"),
                                             summary: InterfaceSummary(json: m["summary"])))
        }
        self.init(generation: gen, netns: top["netns"]?.stringValue, configText: config, interfaces: interfaces)
    }
}
