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
    public var slots: [String: UInt32]
    /// Nodes in the firewall table (0 without a firewall).
    public var firewallNodes: Int
    public var firewallTrees: Int
    /// Nodes every firewall table of the loaded program holds (fixed at load).
    public var firewallCapacity: Int
    /// Bucket and counter slot per rate-limit name.
    public var limitSlots: [String: UInt32]
    /// The slot (0 or 1) of dp_rl, dp_lb_vips and dp_lb_ring the running generation uses.
    public var limitTable: Int
    /// Counter slot per load-balancer name, and backend slot per backend identity
    /// (LoadBalancerCompiler.backendID).
    public var vipSlots: [String: UInt32]
    public var backendSlots: [String: UInt32]

    public init(name: String, ifindex: Int32, mode: String, slots: [String: UInt32], firewallNodes: Int, firewallTrees: Int,
                firewallCapacity: Int, limitSlots: [String: UInt32] = [:], limitTable: Int = 0,
                vipSlots: [String: UInt32] = [:], backendSlots: [String: UInt32] = [:]) {
        self.name = name
        self.ifindex = ifindex
        self.mode = mode
        self.slots = slots
        self.firewallNodes = firewallNodes
        self.firewallTrees = firewallTrees
        self.firewallCapacity = firewallCapacity
        self.limitSlots = limitSlots
        self.limitTable = limitTable
        self.vipSlots = vipSlots
        self.backendSlots = backendSlots
    }

    /// Slots for `rules`: a rule keeps the slot its name had, a new name takes the lowest
    /// slot neither the old nor the new rule set uses (a slot freed by this apply may
    /// still be counted into by packets of the old generation).
    public static func assignSlots(_ rules: [String], previous: [String: UInt32]) -> (slots: [String: UInt32], fresh: [UInt32]) {
        var slots: [String: UInt32] = [:]
        var used = Set(previous.values)
        used.insert(0)
        var fresh: [UInt32] = []
        var next: UInt32 = 1
        for name in rules {
            if let s = previous[name] { slots[name] = s; continue }
            while used.contains(next) { next += 1 }
            slots[name] = next
            used.insert(next)
            fresh.append(next)
        }
        return (slots, fresh)
    }
}

extension DataplaneState {
    /// Stored form: a JSON header, then the config file's bytes as they were (a large
    /// config would cost more to escape and parse back than to copy).
    public var encoded: [UInt8] {
        let header = Array(json.utf8)
        return withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + Array(configText.utf8)
    }

    public init(encoded bytes: [UInt8]) throws(DecodeError) {
        guard bytes.count >= 8 else { throw DecodeError.unreadable }
        let length = bytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard length <= bytes.count - 8 else { throw DecodeError.unreadable }
        try self.init(json: Array(bytes[8..<8 + length]),
                      configText: String(decoding: bytes[(8 + length)...], as: UTF8.self))
    }

    var json: String {
        JSONOutput.render(.obj([
            "generation": .int(generation),
            "netns": netns.map { .string($0) } ?? .null,
            "interfaces": .array(interfaces.map { i in
                .obj([
                    "name": .string(i.name), "ifindex": .int(i.ifindex), "mode": .string(i.mode),
                    "firewall_nodes": .int(i.firewallNodes), "firewall_trees": .int(i.firewallTrees),
                    "firewall_capacity": .int(i.firewallCapacity), "limit_table": .int(i.limitTable),
                    "slots": Self.slotObject(i.slots),
                    "limit_slots": Self.slotObject(i.limitSlots),
                    "vip_slots": Self.slotObject(i.vipSlots),
                    "backend_slots": Self.slotObject(i.backendSlots),
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

    init(json: [UInt8], configText config: String) throws(DecodeError) {
        let bad = DecodeError.unreadable
        guard let doc = try? JSONParser.parse(json), case .object(let top) = doc else { throw bad }
        func member(_ m: [JSONMember], _ k: String) -> JSONValue? { m.first { $0.key == k }?.value }
        func int(_ v: JSONValue?) -> Int64? { if case .number(let n) = v { return Int64(n) }; return nil }
        func str(_ v: JSONValue?) -> String? { if case .string(let s) = v { return s }; return nil }
        guard let gen = int(member(top, "generation")), case .array(let ifs) = member(top, "interfaces") else { throw bad }
        var interfaces: [InterfaceState] = []
        for i in ifs {
            guard case .object(let m) = i, let name = str(member(m, "name")), let ifindex = int(member(m, "ifindex")),
                  let mode = str(member(m, "mode")), case .object(let slotMembers) = member(m, "slots") else { throw bad }
            var slots: [String: UInt32] = [:]
            slots.reserveCapacity(slotMembers.count)
            for s in slotMembers { guard let v = int(s.value) else { throw bad }; slots[s.key] = UInt32(v) }
            func optionalSlots(_ key: String) throws(DecodeError) -> [String: UInt32] {
                var out: [String: UInt32] = [:]
                if case .object(let members) = member(m, key) {
                    for s in members { guard let v = int(s.value) else { throw bad }; out[s.key] = UInt32(v) }
                }
                return out
            }
            interfaces.append(InterfaceState(name: name, ifindex: Int32(ifindex), mode: mode, slots: slots,
                                             firewallNodes: Int(int(member(m, "firewall_nodes")) ?? 0),
                                             firewallTrees: Int(int(member(m, "firewall_trees")) ?? 0),
                                             firewallCapacity: Int(int(member(m, "firewall_capacity")) ?? 0),
                                             limitSlots: try optionalSlots("limit_slots"), limitTable: Int(int(member(m, "limit_table")) ?? 0),
                                             vipSlots: try optionalSlots("vip_slots"), backendSlots: try optionalSlots("backend_slots")))
        }
        self.init(generation: UInt64(gen), netns: str(member(top, "netns")), configText: config, interfaces: interfaces)
    }
}
