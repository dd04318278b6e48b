import CLibBPF
import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

/// The firewall's part of an apply: its table (written into the spare when it can be),
/// and the counters of rules new in this apply.
struct FirewallInstaller: Installer {
    let root: PinRoot

    func build(_ stage: InterfaceStage) throws(BPFError) -> [GenerationTable: BPFMap] {
        let plan = stage.plan
        let spare = plan.loadsProgram || plan.firewall == nil ? nil : root.takeSpare(stage.name, capacity: stage.capacity)
        let table = try Dataplane.firewallTable(capacity: stage.capacity, plan.firewall, filling: spare)
        stage.firewallTable = table
        return plan.firewall == nil ? [:] : [.firewall: table]
    }

    func prepare(_ stage: InterfaceStage) throws(BPFError) {
        // An interface new in this apply has new counter maps, zero already.
        guard !stage.createdDirectory else { return }
        let slots = stage.plan.freshRuleSlots + (stage.plan.resetDefault ? [0] : [])
        guard !slots.isEmpty else { return }
        let ruleStats = try BPFMap.open(pinned: root.map(DP_MAP_RULE_STATS, of: stage.name))
        for slot in slots { try ruleStats.updatePerCPU(slot, dp_rule_stats()) }
    }

    func retire(_ stage: InterfaceStage) throws(BPFError) {
        // A new program instance's tables are its own: the one it replaced goes.
        let retired = stage.program == nil ? stage.previousFirewall : nil
        root.keepSpare(retired, of: stage.name, capacity: stage.tables[.firewall] == nil ? 0 : stage.capacity)
    }
}

extension Dataplane {
    /// A firewall table of `capacity` nodes holding `table` (empty when there is none),
    /// written through its memory: `spare` (a table of that capacity no packet reads) or a new one.
    public static func firewallTable(capacity: Int, _ table: FirewallTable?, filling spare: BPFMap? = nil) throws(BPFError) -> BPFMap {
        let map: BPFMap
        if let spare {
            map = spare
        } else {
            // One value holding every node (xdpctl_abi.h): the program offsets into it.
            map = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_fw_tree", keySize: 4,
                                    valueSize: capacity * MemoryLayout<dp_fw_node>.stride, maxEntries: 1, flags: UInt32(BPF_F_MMAPABLE))
        }
        if let table {
            try map.withMappedValues(table.nodes.count, as: dp_fw_node.self, writable: true) { memory in
                _ = table.nodes.withUnsafeBufferPointer { memory.initialize(fromContentsOf: $0) }
            }
        }
        return map
    }

    /// The capacity (nodes) of firewall table `map`, or nil when it has another shape: a
    /// table from a build whose programs looked nodes up one by one, or was not mappable.
    static func firewallCapacity(of map: BPFMap) -> Int? {
        guard let info = try? map.info(), info.maxEntries == 1, info.flags & UInt32(BPF_F_MMAPABLE) != 0,
              info.valueSize % MemoryLayout<dp_fw_node>.stride == 0 else { return nil }
        return info.valueSize / MemoryLayout<dp_fw_node>.stride
    }
}

extension PinRoot {
    /// Interface `name`'s spare table when it has `capacity` nodes, unpinned, so a spare pin
    /// never names a table packets read. Its nodes are stale: fill every node you refer to.
    /// Filling it rather than a new table saves allocating and zeroing the memory, which
    /// can take 100-400 ms for 125 MB in a virtual machine that returns freed pages to its host.
    func takeSpare(_ name: String, capacity: Int) -> BPFMap? {
        let pin = spareTable(of: name)
        guard let spare = try? BPFMap.open(pinned: pin) else { return nil }
        unlink(pin)
        return Dataplane.firewallCapacity(of: spare) == capacity ? spare : nil
    }

    /// After a flip on interface `name`: keeps `retired`, the table it took out of service,
    /// as the spare, or else the spare there is if it has `capacity` nodes (0: none). No
    /// packet reads `retired` any more: an update of dp_gen returns only once every program
    /// run that could hold the old generation has ended (synchronize_rcu).
    func keepSpare(_ retired: BPFMap?, of name: String, capacity: Int) {
        let pin = spareTable(of: name)
        if let retired, capacity > 0 {
            unlink(pin)
            try? retired.pin(at: pin)
        } else if (try? BPFMap.open(pinned: pin)).flatMap(Dataplane.firewallCapacity) != capacity {
            unlink(pin)
        }
    }
}
