import CLibBPF
import Glibc

/// A tc egress program attached through tcx as a bpf_link (kernel 6.6+): like the XDP
/// link it survives the control plane while pinned, is swapped in one step
/// (XDPLink.detach and XDPLink.program serve any pinned link), and sits beside
/// whatever qdisc-based filters other tools keep on the interface.
public enum TCLink {
    /// BPF_TCX_EGRESS: this build's libbpf headers predate tcx (the kernel's numbering).
    static let egress = bpf_attach_type(rawValue: 47)

    /// Attaches `programFD` to `ifindex`'s egress and pins the link at `pinPath`.
    public static func attach(programFD: Int32, ifindex: Int32, interface: String, pinPath: String) throws(BPFError) {
        // libbpf passes the target as link_create.target_fd, which tcx reads as the ifindex.
        let fd = bpf_link_create(programFD, ifindex, egress, nil)
        if fd < 0 { throw BPFError(.attachTC(interface), errno: -fd) }
        let link = OwnedDescriptor(fd)
        try check(bpf_obj_pin(link.raw, pinPath), .pin(pinPath))
    }

    /// Swaps the program behind the pinned link at `pinPath`.
    public static func replaceProgram(pinPath: String, programFD: Int32, interface: String) throws(BPFError) {
        let link = OwnedDescriptor(try checkFD(bpf_obj_get(pinPath), .openPin(pinPath)))
        try check(bpf_link_update(link.raw, programFD, nil), .attachTC(interface))
    }
}
