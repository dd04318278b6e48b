import CLibBPF
import CXDPCtlABI
import Glibc
import XDPCtlBPF
import XDPCtlCore

/// The program of an interface new in this apply, loaded on the other core while the rule
/// sets compile (the verifier takes ~0.3 s), for a table size guessed from the rule count.
final class Preload: @unchecked Sendable {
    /// Nodes per firewall table of the loaded instance.
    let capacity: Int
    private let load: Concurrently<Loaded>

    /// The outcome of the load, handed from its thread to the apply's (which waits for it).
    private struct Loaded: @unchecked Sendable {
        let result: Result<BPFObject, BPFError>
    }

    /// Six and a half nodes per rule covers what the compiler builds for ACL-, firewall-
    /// and IPC-shaped sets of 100,000 rules (5.7, 3.7 and 6.0 per rule); a bigger table
    /// loads the program again.
    init(rules: Int, pinRoot root: PinRoot, interface: String) {
        capacity = FirewallTable.capacity(for: 13 * (rules + 1) / 2)
        load = Concurrently { [capacity] in
            Loaded(result: Result { () throws(BPFError) in
                // The template table must outlive the load: libbpf keeps its descriptor, not a
                // copy. No packet reads it, so it then serves as the spare the first patch fills.
                let template = try Dataplane.firewallTable(capacity: capacity, nil)
                let object = try Dataplane.ingressProgram(pinRoot: root.interface(interface), table: template,
                                                          pinPaths: Dataplane.sharedPins(root))
                try template.pin(at: root.spareTable(of: interface))
                return object
            })
        }
    }

    /// The loaded program, if it loaded and holds tables of `capacity` nodes or more.
    func program(forCapacity needed: Int) -> BPFObject? {
        guard capacity >= needed, case .success(let object) = load.value.result else { return nil }
        return object
    }

    /// Waits for the load to end (its pins are the caller's to remove).
    func wait() { _ = load.value }
}

extension Dataplane {
    /// Starts loading the programs of interfaces that have no pins yet, each in a pin
    /// directory it creates.
    func preload(_ config: Config, old: DataplaneState?) -> [String: Preload] {
        var out: [String: Preload] = [:]
        for iface in config.interfaces where old?.interface(iface.name) == nil {
            let dir = root.interface(iface.name)
            guard access(dir, F_OK) != 0, Netns.ifindex(of: iface.name) != nil, mkdir(dir, 0o700) == 0 else { continue }
            out[iface.name] = Preload(rules: iface.firewall?.rules.count ?? 0, pinRoot: root, interface: iface.name)
        }
        return out
    }

    /// Drops preloaded programs and their pin directories (the apply ends before using them).
    func discard(_ preloads: [String: Preload]) {
        for (name, p) in preloads {
            p.wait()
            try? root.removeTree(root.interface(name))
        }
    }
}
