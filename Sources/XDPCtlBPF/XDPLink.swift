import CLibBPF
import CXDPCtlShims
import Glibc

/// How an XDP program is attached: in the driver, or in the generic (skb) path.
public enum XDPAttachMode: String, Sendable {
    case native, generic

    var flags: UInt32 {
        switch self {
        case .native: UInt32(XDP_FLAGS_DRV_MODE)
        case .generic: UInt32(XDP_FLAGS_SKB_MODE)
        }
    }
}

/// An XDP bpf_link: survives the control plane while pinned, and is detached by
/// destroying the link, which no other tool can replace by accident.
public enum XDPLink {
    /// Attaches `programFD` to `ifindex` in `mode`, pins the link at `pinPath`.
    public static func attach(programFD: Int32, ifindex: Int32, interface: String,
                              mode: XDPAttachMode, pinPath: String) throws(BPFError) {
        let link = try hold(programFD: programFD, ifindex: ifindex, interface: interface, mode: mode)
        try check(bpf_obj_pin(link.raw, pinPath), .pin(pinPath))
    }

    /// Attaches `programFD` to `ifindex` in `mode` for as long as the returned link is open.
    public static func hold(programFD: Int32, ifindex: Int32, interface: String, mode: XDPAttachMode) throws(BPFError) -> OwnedDescriptor {
        let opts = LibBPFOptions<bpf_link_create_opts>()
        opts.pointer.pointee.flags = mode.flags
        let fd = bpf_link_create(programFD, ifindex, BPF_XDP, opts.pointer)
        if fd < 0 {
            var error = BPFError(.attachXDP(interface: interface, mode: mode.rawValue), errno: -fd)
            if let other = program(on: ifindex) {
                error.log = ["interface \(interface) runs XDP program \"\(other.name)\" (id \(other.id)) attached by another tool"]
            }
            throw error
        }
        return OwnedDescriptor(fd)
    }

    /// Swaps the program behind a pinned link in one step: a packet runs the old program
    /// or the new one.
    public static func replaceProgram(pinPath: String, programFD: Int32, interface: String) throws(BPFError) {
        let link = OwnedDescriptor(try checkFD(bpf_obj_get(pinPath), .openPin(pinPath)))
        try check(bpf_link_update(link.raw, programFD, nil), .attachXDP(interface: interface, mode: "replace"))
    }

    /// The program a pinned link runs, as an owned descriptor.
    public static func program(pinPath: String) throws(BPFError) -> OwnedDescriptor {
        let id = try info(pinPath: pinPath).programID
        return OwnedDescriptor(try checkFD(bpf_prog_get_fd_by_id(id), .linkInfo(pinPath)))
    }

    /// The ids of the maps the program a pinned link runs uses: whether it reads a map
    /// tells one build's program from another's.
    public static func mapIDs(pinPath: String) throws(BPFError) -> [UInt32] {
        let program = try program(pinPath: pinPath)
        var info = bpf_prog_info()
        var len = UInt32(MemoryLayout<bpf_prog_info>.size)
        try check(bpf_obj_get_info_by_fd(program.raw, &info, &len), .linkInfo(pinPath))
        let count = info.nr_map_ids
        var ids = [UInt32](repeating: 0, count: Int(count))
        info = bpf_prog_info()
        info.nr_map_ids = count
        let rc = ids.withUnsafeMutableBufferPointer { buffer in
            info.map_ids = UInt64(UInt(bitPattern: buffer.baseAddress))
            return bpf_obj_get_info_by_fd(program.raw, &info, &len)
        }
        try check(rc, .linkInfo(pinPath))
        return Array(ids.prefix(Int(min(count, info.nr_map_ids))))
    }

    /// A pinned program (not a link), as an owned descriptor.
    public static func pinnedProgram(_ path: String) throws(BPFError) -> OwnedDescriptor {
        OwnedDescriptor(try checkFD(bpf_obj_get(path), .openPin(path)))
    }

    /// Detaches the pinned link at `pinPath` and removes the pin. A link whose interface
    /// is gone is only unpinned.
    public static func detach(pinPath: String, interface: String) throws(BPFError) {
        let fd = bpf_obj_get(pinPath)
        if fd >= 0 {
            let link = OwnedDescriptor(fd)
            let rc = bpf_link_detach(link.raw)
            if rc < 0 && rc != -ENOLINK && rc != -EINVAL { throw BPFError(.detach(interface), errno: -rc) }
        } else if fd != -ENOENT {
            throw BPFError(.openPin(pinPath), errno: -fd)
        }
        if unlink(pinPath) != 0 && errno != ENOENT { throw BPFError(.unpin(pinPath), errno: errno) }
    }

    /// What the pinned link is attached to: program id and ifindex (0 when detached).
    public static func info(pinPath: String) throws(BPFError) -> (programID: UInt32, ifindex: UInt32) {
        let link = OwnedDescriptor(try checkFD(bpf_obj_get(pinPath), .openPin(pinPath)))
        var info = bpf_link_info()
        var len = UInt32(MemoryLayout<bpf_link_info>.size)
        try check(bpf_obj_get_info_by_fd(link.raw, &info, &len), .linkInfo(pinPath))
        return (info.prog_id, info.xdp.ifindex)
    }

    /// The mode the kernel reports for the program on `ifindex`, if any.
    public static func attachedMode(ifindex: Int32, interface: String) throws(BPFError) -> (mode: XDPAttachMode?, programID: UInt32) {
        let opts = LibBPFOptions<bpf_xdp_query_opts>()
        try check(bpf_xdp_query(ifindex, 0, opts.pointer), .queryXDP(interface))
        let result = opts.pointer.pointee
        switch Int32(result.attach_mode) {
        case Int32(XDP_ATTACHED_DRV): return (.native, result.drv_prog_id)
        case Int32(XDP_ATTACHED_SKB): return (.generic, result.skb_prog_id)
        default: return (nil, result.prog_id)
        }
    }

    /// The XDP program on an interface, whoever attached it (through libxdp).
    public static func program(on ifindex: Int32) -> (name: String, id: UInt32)? {
        var name = [CChar](repeating: 0, count: 64)
        var id: UInt32 = 0
        guard xdpctl_xdp_program_on(ifindex, &name, name.count, &id) == 0 else { return nil }
        return (String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), id)
    }
}
