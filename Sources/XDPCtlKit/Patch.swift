import CLibBPF
import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

extension Dataplane {
    /// Applies `text` by patching one interface's running firewall table, when the file
    /// differs from the applied one only inside that firewall's rule list: the changed
    /// rules are decoded and checked, the table is copied with the change patched in
    /// (FirewallCompiler.patch) and swapped in atomically, and nothing else is touched.
    /// Returns nil when the change needs a full apply (the table must grow, too much
    /// changed since the last full compile, a changed rule is not valid...): apply then
    /// decodes, checks and compiles the whole file, and reports any error with its place.
    /// Call with the pin root locked.
    func patch(_ old: DataplaneState, to text: String, _ edit: RuleEdit) throws(DataplaneError) -> ApplyResult? {
        guard old.netns == netns, edit.interface < old.interfaces.count, old.interfaces.allSatisfy(linkIntact),
              let added = RuleEdit.rules(text, edit.newBytes), let removed = RuleEdit.rules(old.configText, edit.oldBytes) else { return nil }
        if added == removed { return ApplyResult(generation: old.generation, changed: false, changes: []) }
        var iface = old.interfaces[edit.interface]
        // nil: the slots keep no order (a state of an older build), or a name the edit brings
        // in is used outside it (names are unique in a list).
        guard let (slots, addedSlots, fresh) = iface.slots.replacing(edit.replaced, with: added.map(\.name)),
              fresh.allSatisfy({ $0 < DP_MAX_RULES }) else { return nil }
        // A rule set that shrank to half its table takes a full apply, which loads the
        // program again with a smaller table and gives the memory back (nodes estimated
        // as Preload does: 13 per 2 rules).
        if FirewallTable.oversized(capacity: iface.firewallCapacity, fits: FirewallTable.capacity(for: 13 * (slots.count + 1) / 2)) {
            return nil
        }

        let name = iface.name
        do throws(BPFError) {
            // A program of an older build is replaced by a full apply.
            guard let maps = try currentMaps(of: name) else { return nil }
            var tables = try maps.runningTables()
            guard let gen = try maps.running(), gen.slot < DP_GEN_SLOTS, let running = tables[.firewall], iface.firewallNodes > 0,
                  Self.firewallCapacity(of: running) == iface.firewallCapacity else { return nil }
            // The running table copied into a new one and patched there: the new generation
            // has it and the running generation's other tables.
            let table = try Self.firewallTable(capacity: iface.firewallCapacity, nil, filling: root.takeSpare(name, capacity: iface.firewallCapacity))
            let count = try table.withMappedValues(iface.firewallCapacity, as: dp_fw_node.self, writable: true) { (copy) throws(BPFError) -> Int? in
                try running.withMappedValues(iface.firewallNodes, as: dp_fw_node.self, writable: false) { _ = copy.update(fromContentsOf: $0) }
                let defaultAction: RuleAction = copy[0].action == UInt8(DP_FW_DROP.rawValue) ? .drop : .allow
                return compiler.patch(copy, count: iface.firewallNodes, replacing: edit.replaced, with: added, slots: addedSlots, defaultAction: defaultAction)
            }
            guard let count else { return nil }
            let ruleStats = try BPFMap.open(pinned: root.map(DP_MAP_RULE_STATS, of: name))
            for slot in fresh { try ruleStats.updatePerCPU(slot, dp_rule_stats()) }
            var state = old
            state.generation += 1
            tables[.firewall] = table
            let previous = try maps.word()
            try root.beginJournal()
            try maps.stage(tables, slot: 1 - gen.slot)
            try maps.flip(slot: 1 - gen.slot, tables: tables.keys, flags: gen.tables & DP_GEN_NAT_PEERS.rawValue)
            iface.slots = slots
            iface.firewallNodes = count
            (iface.firewallTrees, iface.firewallPatchTrees) = try table.withMappedValues(1, as: dp_fw_node.self, writable: false) { $0[0].trees }
            state.configText = text
            state.interfaces[edit.interface] = iface
            do { try root.writeState(state.encoded) } catch {
                try? maps.restore(previous)
                try? maps.clear(slot: 1 - gen.slot)
                root.endJournal()
                throw error
            }
            root.endJournal()
            root.keepSpare(running, of: name, capacity: iface.firewallCapacity)
            return ApplyResult(generation: state.generation, changed: true, changes: ConfigDiff.rules(name, removed, added), patched: true)
        } catch {
            throw .kernel(error)
        }
    }
}
