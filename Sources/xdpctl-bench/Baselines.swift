import ArgumentParser
import CLibBPF
import CXDPCtlABI
import Foundation
import XDPCtlBPF
import XDPCtlCore
import XDPCtlKit
import XDPCtlWorkloads

/// The frames of each path, and the baselines measured beside our program: XDP_DROP and xdp-filter.
extension Bench {
    /// Frames that hit allow rules and drop rules spread over the whole list, and frames
    /// that match no rule; each checked against the compiled table.
    func framesByPath(_ fw: Firewall, _ table: FirewallTable) -> [(Path, [PacketKey])] {
        var rng = SeededRandom(seed: UInt64(fw.rules.count))
        var byPath: [Path: [PacketKey]] = [:]
        var i = 0
        while Path.firewall.contains(where: { (byPath[$0]?.count ?? 0) < frames }) && i < 50 * frames {
            let key = i % 3 == 2
                ? PacketKey(src: IPAddress("192.0.2.\(i % 250)")!, dst: IPAddress("198.51.100.\(i % 250)")!, proto: 47) // GRE: no ACL rule matches
                : RuleProfile.packet(hitting: fw.rules[(i * 7919) % fw.rules.count], rng: &rng)
            let node = table.classify(key.words)
            let path: Path = node == 0 ? .miss : table.nodes[node].action == UInt8(DP_FW_DROP.rawValue) ? .drop : .allow
            if byPath[path, default: []].count < frames { byPath[path, default: []].append(key) }
            i += 1
        }
        return Path.firewall.compactMap { p in byPath[p].map { (p, $0) } }
    }

    /// xdp-filter (allow mode: a match drops) with rules on the same frames' destination
    /// address and port, so it does its full lookups.
    struct XDPFilter {
        let object: BPFObject
        let programFD: Int32
        let ports: BPFMap, ipv4: BPFMap, ipv6: BPFMap

        func match(_ keys: [PacketKey]) throws {
            let dst: UInt64 = 1 << 1, tcp: UInt64 = 1 << 2, udp: UInt64 = 1 << 3
            for k in keys {
                if let port = k.dstPort { try ports.updatePerCPU(UInt32(port), dst | tcp | udp) }
                if k.family == .ipv4 {
                    try ipv4.updatePerCPU(k.dst.words[0].bigEndian, dst)
                } else {
                    var raw = [UInt8](repeating: 0, count: 16)
                    for (w, word) in k.dst.words.enumerated() { withUnsafeBytes(of: word.bigEndian) { raw.replaceSubrange(w * 4..<w * 4 + 4, with: $0) } }
                    try raw.withUnsafeBytes { try ipv6.updatePerCPU($0.load(as: (UInt64, UInt64).self), dst) }
                }
            }
        }
    }

    func loadXDPFilter(root: String) throws -> XDPFilter? {
        guard let data = FileManager.default.contents(atPath: xdpFilter) else {
            FileOutput.standardError.write("xdpctl-bench: \(xdpFilter) not found; no xdp-filter column (install xdp-tools)\n")
            return nil
        }
        mkdir(root, 0o700)
        let object = try BPFObject(name: "xdpfilt_alw_all", bytes: [UInt8](data), pinRoot: root)
        return XDPFilter(object: object, programFD: try object.programFD("xdpfilt_alw_all"), ports: try object.map("filter_ports"),
                         ipv4: try object.map("filter_ipv4"), ipv6: try object.map("filter_ipv6"))
    }

    /// ns per run of program `fd` on `packet`, averaged over --repeat runs.
    func time(_ fd: Int32, _ packet: [UInt8]) throws -> Double {
        Double(try TestRun.run(programFD: fd, packet: packet, repeat: self.repeat).duration)
    }

    func mean(_ fd: Int32, _ packets: [[UInt8]]) throws -> Double {
        try packets.reduce(0) { try $0 + time(fd, $1) } / Double(packets.count)
    }

    static func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
}
