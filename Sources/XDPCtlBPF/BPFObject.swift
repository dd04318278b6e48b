import CLibBPF
import CXDPCtlShims
import Glibc

/// A loaded BPF object: its programs, and its maps (pinned by name under `pinRoot`).
public final class BPFObject {
    let handle: OpaquePointer
    public let name: String

    /// Opens and loads an embedded object. Maps declared with LIBBPF_PIN_BY_NAME are
    /// reused from `pinRoot` when pinned there already, and pinned there otherwise.
    /// `innerMaps`: for named map-in-maps, a map with the shape (sizes, capacity) every
    /// inner map will have.
    /// `pinPaths`: maps pinned (and reused) elsewhere than `pinRoot`, e.g. maps every
    /// interface's program shares.
    /// `constants`: the contents of read-only data sections (".rodata.NAME"), which the
    /// verifier takes as constants.
    public convenience init(_ object: EmbeddedObject, pinRoot: String?, innerMaps: [String: BPFMap] = [:],
                            pinPaths: [String: String] = [:], constants: [String: [UInt8]] = [:]) throws(BPFError) {
        try self.init(name: object.name, bytes: object.bytes, pinRoot: pinRoot, innerMaps: innerMaps, pinPaths: pinPaths,
                      constants: constants)
    }

    /// Opens and loads an ELF object given as bytes (e.g. another tool's object file).
    public init(name objectName: String, bytes: [UInt8], pinRoot: String?, innerMaps: [String: BPFMap] = [:],
                pinPaths: [String: String] = [:], constants: [String: [UInt8]] = [:]) throws(BPFError) {
        name = objectName
        var err: Int32 = 0
        let opened = bytes.withUnsafeBytes { buf in
            objectName.withCString { name in
                if let pinRoot {
                    return pinRoot.withCString { xdpctl_object_open_mem(buf.baseAddress, buf.count, name, $0, &err) }
                }
                return xdpctl_object_open_mem(buf.baseAddress, buf.count, name, nil, &err)
            }
        }
        guard let opened else { throw BPFError(.openObject(objectName), errno: err) }
        handle = opened
        for (name, inner) in innerMaps {
            guard let outer = bpf_object__find_map_by_name(handle, name) else { throw BPFError(.findMap(name), errno: ENOENT) }
            try check(bpf_map__set_inner_map_fd(outer, inner.fd.raw), .createMap("\(name) (inner)"))
        }
        for (name, path) in pinPaths {
            guard let map = bpf_object__find_map_by_name(handle, name) else { throw BPFError(.findMap(name), errno: ENOENT) }
            try check(bpf_map__set_pin_path(map, path), .pin(path))
        }
        for (section, bytes) in constants {
            guard let map = bpf_object__find_map_by_name(handle, section) else { throw BPFError(.findMap(section), errno: ENOENT) }
            try check(bytes.withUnsafeBytes { bpf_map__set_initial_value(map, $0.baseAddress, $0.count) }, .createMap(section))
        }
        _ = BPFLog.drain()
        let rc = bpf_object__load(handle)
        if rc < 0 { // deinit closes the object
            throw BPFError(.loadObject(objectName), errno: -rc, log: BPFLog.drain())
        }
    }

    deinit { bpf_object__close(handle) }

    /// File descriptor of a program, owned by the object.
    public func programFD(_ name: String) throws(BPFError) -> Int32 {
        guard let prog = bpf_object__find_program_by_name(handle, name) else {
            throw BPFError(.findProgram(name), errno: ENOENT)
        }
        return try checkFD(bpf_program__fd(prog), .findProgram(name))
    }

    /// Pins a program of the object at `path`.
    public func pinProgram(_ name: String, at path: String) throws(BPFError) {
        try check(bpf_obj_pin(try programFD(name), path), .pin(path))
    }

    /// A map of the object, with its own duplicated descriptor.
    public func map(_ name: String) throws(BPFError) -> BPFMap {
        guard let map = bpf_object__find_map_by_name(handle, name) else {
            throw BPFError(.findMap(name), errno: ENOENT)
        }
        let fd = try checkFD(bpf_map__fd(map), .findMap(name))
        let copy = dup(fd)
        if copy < 0 { throw BPFError(.findMap(name), errno: Glibc.errno) }
        return BPFMap(name: name, fd: OwnedDescriptor(copy))
    }
}
