import CXDPCtlABI

/// The compiled firewall of one interface: the contents of one dp_fw_v3 table.
public struct FirewallTable: Sendable {
    public var nodes: [dp_fw_node]
    /// Rules after expansion of their lists (one box per src × dst × port combination).
    public var boxCount: Int
    public var depth: Int
    public var largestLeaf: Int

    init(nodes: [dp_fw_node], boxCount: Int, depth: Int, largestLeaf: Int) {
        self.nodes = nodes
        self.boxCount = boxCount
        self.depth = depth
        self.largestLeaf = largestLeaf
    }

    /// A table as a running data plane holds it (its shape figures unknown).
    public init(nodes: [dp_fw_node]) {
        self.init(nodes: nodes, boxCount: 0, depth: 0, largestLeaf: 0)
        boxCount = directory.count
    }

    /// The table capacity to load a program with for `nodes` nodes: half as much again
    /// for rule sets to grow into, in steps of DP_FW_MIN_NODES, up to DP_FW_MAX_NODES.
    /// Beyond it, apply loads a bigger program instance.
    public static func capacity(for nodes: Int) -> Int {
        let step = Int(DP_FW_MIN_NODES)
        return min(Int(DP_FW_MAX_NODES), max(step, (nodes * 3 / 2 + step - 1) / step * step))
    }

    /// Whether a table of `capacity` nodes is at least twice one of `fits` (above the
    /// smallest size): an apply then loads the program again with the smaller one.
    public static func oversized(capacity: Int, fits: Int) -> Bool {
        capacity > Int(DP_FW_MIN_NODES) && capacity >= 2 * fits
    }

    /// Trees in use, built by the last full compile and by patches since.
    public var trees: Int { nodes[0].trees.main }
    public var patchTrees: Int { nodes[0].trees.patch }
}

extension FirewallTable {
    /// Records in the header where trees start (root node 1 + t) and their best priority.
    mutating func setTree(_ trees: Range<Int>, best: UInt32) {
        for t in trees {
            nodes[0].setBound(t, high: false, best)
            nodes[0].setBound(t, high: true, UInt32(1 + t))
        }
    }

    /// The directory behind the trees (see xdpctl_abi.h): where the box nodes start, how
    /// many boxes and dead boxes there are.
    var directory: (boxes: Int, count: Int, dead: Int) {
        let dir = Int(DP_FW_DIR)
        return (Int(nodes[0].bound(dir, high: false)), Int(nodes[0].bound(dir, high: true)), Int(nodes[0].bound(dir + 1, high: false)))
    }

    /// Appends the box and dead nodes after the trees and records them in the header.
    /// `trees`: 1 + the first tree a box went to, and 1 + the last, which holds it in full.
    mutating func appendBoxes(_ boxes: Boxes, trees: (Int) -> (entry: UInt8, home: UInt8), dead: [dp_fw_node]) {
        let dir = Int(DP_FW_DIR)
        nodes[0].setBound(dir, high: false, UInt32(nodes.count))
        nodes[0].setBound(dir, high: true, UInt32(boxes.count))
        nodes[0].setBound(dir + 1, high: false, UInt32(dead.count))
        nodes.reserveCapacity(nodes.count + boxes.count + dead.count)
        for r in 0..<boxes.count {
            var n = boxes.node(Int32(r))
            (n.shift, n.field) = trees(r)
            n.count = 1
            nodes.append(n)
        }
        nodes += dead
    }
}

extension dp_fw_node {
    /// The inclusive low or high bound of key word `field` (a RULE's box; a HEADER's trees).
    public func bound(_ field: Int, high: Bool) -> UInt32 {
        withUnsafeBytes(of: high ? hi : lo) { $0.load(fromByteOffset: field * 4, as: UInt32.self) }
    }

    mutating func setBound(_ field: Int, high: Bool, _ value: UInt32) {
        if high {
            withUnsafeMutableBytes(of: &hi) { $0.storeBytes(of: value, toByteOffset: field * 4, as: UInt32.self) }
        } else {
            withUnsafeMutableBytes(of: &lo) { $0.storeBytes(of: value, toByteOffset: field * 4, as: UInt32.self) }
        }
    }

    /// A header's non-empty trees: those of the full compile, and the patch trees.
    public var trees: (main: Int, patch: Int) {
        let used = (0..<min(Int(count), Int(DP_FW_MAX_TREES))).filter { bound($0, high: false) != .max }
        return (used.count { $0 < Int(DP_FW_PATCH_TREE) }, used.count { $0 >= Int(DP_FW_PATCH_TREE) })
    }

    /// Whether two RULE nodes' boxes share a key.
    func overlaps(_ n: dp_fw_node) -> Bool {
        for f in (0..<Int(DP_FW_NFIELDS.rawValue)).reversed() where bound(f, high: false) > n.bound(f, high: true) || n.bound(f, high: false) > bound(f, high: true) { return false }
        return true
    }

    /// Whether a RULE node's box holds `key`.
    public func matches(_ key: [UInt32]) -> Bool {
        (0..<Int(DP_FW_NFIELDS.rawValue)).allSatisfy { bound($0, high: false) <= key[$0] && key[$0] <= bound($0, high: true) }
    }
}

public struct CapacityError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
