import CLibBPF
import CXDPCtlShims
import Glibc
import SystemPackage

/// The bpffs directory that holds everything xdpctl keeps in the kernel:
///   ROOT/dp_state              the applied config and slot assignments (DataplaneState)
///   ROOT/dp_journal            present while an apply changes the kernel (see beginJournal)
///   ROOT/agent/                the directory a running agent holds locked (lockAgent)
///   ROOT/agent/withdrawn/      present while that agent announces nothing because the
///                              node is drained (its answer to ROOT/drain)
///   ROOT/capture/              the directory a running capture holds locked (lockCapture)
///   ROOT/owner/                in a private load's root, the directory its command holds
///                              locked while it lives (lockOwner)
///   ROOT/drain/                present while the node is drained (xdpctl drain): the
///                              programs serve, no VIP is announced
///   ROOT/ifaces/NAME/link      the XDP bpf_link of interface NAME
///   ROOT/ifaces/NAME/link_tc   its tc egress bpf_link (tcx), when it has NAT
///   ROOT/ifaces/NAME/prog      its XDP program instead of a link, in a private load
///   ROOT/ifaces/NAME/dp_*      its maps (pinned by name by libbpf)
///   ROOT/ifaces/NAME/dp_fw_spare  the firewall table its last swap retired, which the
///                              next one fills instead of a new table
///   ROOT/dp_*                  maps every interface's program shares
public struct PinRoot: Sendable {
    public let path: String

    public init(_ path: String) { self.path = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path }

    public var state: String { "\(path)/dp_state" }
    public var journal: String { "\(path)/dp_journal" }
    public var interfaces: String { "\(path)/ifaces" }
    public var agent: String { "\(path)/agent" }
    public var capture: String { "\(path)/capture" }
    public var owner: String { "\(path)/owner" }
    public var drainMark: String { "\(path)/drain" }
    public var withdrawnMark: String { "\(agent)/withdrawn" }
    public func interface(_ name: String) -> String { "\(interfaces)/\(name)" }
    public func link(_ name: String) -> String { "\(interface(name))/link" }
    public func tcLink(_ name: String) -> String { "\(interface(name))/link_tc" }
    /// The XDP program of a private load (Dataplane.loadPrivately), which has no link.
    public func program(_ name: String) -> String { "\(interface(name))/prog" }
    public func map(_ name: String, of interface: String) -> String { "\(self.interface(interface))/\(name)" }
    public func shared(_ name: String) -> String { "\(path)/\(name)" }
    public func spareTable(of interface: String) -> String { "\(self.interface(interface))/dp_fw_spare" }

    /// Creates the directory tree (mode 0700); fails unless it lies on a BPF filesystem,
    /// and refuses directories that anyone but this user could change: whoever can
    /// remove a pinned link detaches the firewall (bpffs is often mounted 1777).
    public func create() throws(BPFError) {
        let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        guard xdpctl_is_bpffs(path) == 1 || xdpctl_is_bpffs(parent.isEmpty ? "/" : parent) == 1 else {
            throw BPFError(.pin(path), errno: ENOTSUP, log: ["\(parent) is not a BPF filesystem; mount one with `mount -t bpf bpf /sys/fs/bpf`"])
        }
        for dir in [path, interfaces] {
            if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw BPFError(.pin(dir), errno: errno) }
            var info = stat()
            guard lstat(dir, &info) == 0 else { throw BPFError(.pin(dir), errno: errno) }
            guard info.st_mode & S_IFMT == S_IFDIR, info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else {
                throw BPFError(.adoptPinRoot("\(dir) (owner uid \(info.st_uid), mode \(String(info.st_mode & 0o7777, radix: 8)))"), errno: EPERM)
            }
        }
    }

    public var exists: Bool { access(state, F_OK) == 0 }

    /// Holds an exclusive lock on the pin root for the life of the returned descriptor,
    /// so two applies (or an apply and a down) never interleave. When another command
    /// holds it, calls `waiting` once and waits up to `seconds`, then throws (ETIMEDOUT).
    public func lock(wait seconds: Double = .infinity, waiting: () -> Void = {}) throws(BPFError) -> OwnedDescriptor {
        let handle: OwnedDescriptor
        do {
            handle = OwnedDescriptor(try FileDescriptor.open(FilePath(path), .readOnly, options: [.directory, .closeOnExec], retryOnInterrupt: true))
        } catch {
            throw BPFError(.lockPinRoot(path), errno: (error as? Errno)?.rawValue ?? EIO)
        }
        // swift-system has no flock().
        if flock(handle.raw, LOCK_EX | LOCK_NB) == 0 { return handle }
        guard errno == EWOULDBLOCK else { throw BPFError(.lockPinRoot(path), errno: errno) }
        waiting()
        let start = ContinuousClock.now
        while flock(handle.raw, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { throw BPFError(.lockPinRoot(path), errno: errno) }
            let waited = ContinuousClock.now - start
            if Double(waited.components.seconds) + Double(waited.components.attoseconds) / 1e18 >= seconds {
                throw BPFError(.lockPinRoot(path), errno: ETIMEDOUT)
            }
            usleep(20_000)
        }
        return handle
    }

    /// Holds the agent's lock for the life of the returned descriptor: one agent serves a
    /// pin root. Fails at once (EWOULDBLOCK) while another agent holds it. A lock of its
    /// own, not the pin root's: an agent holds it for its whole life, and takes the pin
    /// root's only for each apply, as every command does.
    public func lockAgent() throws(BPFError) -> OwnedDescriptor {
        try lockAgent(create: true)!
    }

    /// Whether an agent holds the pin root now.
    public var agentRuns: Bool {
        do {
            _ = try lockAgent(create: false)
            return false
        } catch {
            return error.errno == .wouldBlock
        }
    }

    /// Holds the capture's lock for the life of the returned descriptor: one capture at a
    /// time (they share the programs' capture filter). Fails at once (EWOULDBLOCK) while
    /// another capture holds it.
    public func lockCapture() throws(BPFError) -> OwnedDescriptor {
        try lockDirectory(capture, create: true, .lockCapture(capture))!
    }

    /// Holds the lock of a private load's root for the life of the returned descriptor:
    /// the root is in use. Fails at once (EWOULDBLOCK) while a command holds it; without
    /// `create`, nil when the root has no owner directory.
    public func lockOwner(create: Bool) throws(BPFError) -> OwnedDescriptor? {
        try lockDirectory(owner, create: create, .lockPinRoot(owner))
    }

    /// lockAgent; without `create`, nil when no agent ever ran here (nothing to hold).
    private func lockAgent(create: Bool) throws(BPFError) -> OwnedDescriptor? {
        try lockDirectory(agent, create: create, .lockAgent(agent))
    }

    private func lockDirectory(_ dir: String, create: Bool, _ what: BPFError.Operation) throws(BPFError) -> OwnedDescriptor? {
        if !create && access(dir, F_OK) != 0 { return nil }
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw BPFError(what, errno: errno) }
        let handle: OwnedDescriptor
        do {
            handle = OwnedDescriptor(try FileDescriptor.open(FilePath(dir), .readOnly, options: [.directory, .closeOnExec], retryOnInterrupt: true))
        } catch {
            throw BPFError(what, errno: (error as? Errno)?.rawValue ?? EIO)
        }
        guard flock(handle.raw, LOCK_EX | LOCK_NB) == 0 else { throw BPFError(what, errno: errno) }
        return handle
    }

    /// Whether a mark (an empty directory: drainMark, withdrawnMark) is there.
    public func marked(_ mark: String) -> Bool { access(mark, F_OK) == 0 }

    /// Puts a mark there or takes it away; either may already be so.
    public func mark(_ mark: String, _ on: Bool) throws(BPFError) {
        if on {
            if mkdir(mark, 0o700) != 0 && errno != EEXIST { throw BPFError(.pin(mark), errno: errno) }
        } else if rmdir(mark) != 0 && errno != ENOENT {
            throw BPFError(.unpin(mark), errno: errno)
        }
    }

    /// Removes a directory of pins (maps, links) and the directory itself.
    public func removeTree(_ dir: String) throws(BPFError) {
        guard let names = Self.entries(of: dir) else {
            if errno == ENOENT { return }
            throw BPFError(.unpin(dir), errno: errno)
        }
        for name in names {
            let p = "\(dir)/\(name)"
            if unlink(p) != 0 {
                if errno == EISDIR || errno == EPERM { try removeTree(p) } else if errno != ENOENT { throw BPFError(.unpin(p), errno: errno) }
            }
        }
        if rmdir(dir) != 0 && errno != ENOENT { throw BPFError(.unpin(dir), errno: errno) }
    }

    /// Names of the interface directories present.
    public func interfaceNames() -> [String] {
        (Self.entries(of: interfaces) ?? []).sorted()
    }

    /// The names in a directory, without . and ..; nil (errno set) when it cannot be read.
    public static func entries(of dir: String) -> [String]? {
        guard let d = opendir(dir) else { return nil }
        defer { closedir(d) }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    // MARK: the state blob

    /// Bytes per element of the state map: few system calls for a 100,000-rule config, and
    /// at most one chunk of padding for a small one.
    static func chunk(for size: Int) -> Int { size > 1 << 20 ? 1 << 20 : 4096 }

    /// Writes `blob` into a new array map and swaps it in with rename(), so a reader sees
    /// the old state or the new one.
    public func writeState(_ blob: [UInt8]) throws(BPFError) {
        let size = 8 + blob.count
        let chunk = Self.chunk(for: size)
        let entries = (size + chunk - 1) / chunk
        let map = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_state", keySize: 4, valueSize: chunk,
                                    maxEntries: entries, flags: UInt32(BPF_F_MMAPABLE))
        try map.withMappedBytes(size, writable: true) { memory in
            memory.storeBytes(of: UInt64(blob.count).littleEndian, as: UInt64.self)
            blob.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: memory[8...]).copyMemory(from: $0) }
        }
        let temp = state + "_new" // bpffs refuses names with a dot
        unlink(temp)
        try map.pin(at: temp)
        if rename(temp, state) != 0 { throw BPFError(.pin(state), errno: errno) }
    }

    // MARK: the journal

    /// Marks the pin root as being changed, before an apply changes anything the running
    /// programs or the next apply read, until endJournal(). A command that finds the mark
    /// left (the apply was killed, or the machine went down) knows the kernel may not be
    /// what dp_state says, and recovers first (Dataplane.recoverInterruptedApply). The mark
    /// is an empty map: bpffs holds nothing else.
    public func beginJournal() throws(BPFError) {
        guard access(journal, F_OK) != 0 else { return }
        let map = try BPFMap.create(type: BPF_MAP_TYPE_ARRAY, name: "dp_journal", keySize: 4, valueSize: 4, maxEntries: 1)
        try map.pin(at: journal)
    }

    /// The change is complete, or undone: the kernel is what dp_state says.
    public func endJournal() { unlink(journal) }

    /// An apply began and never finished.
    public var journalLeft: Bool { access(journal, F_OK) == 0 }

    /// The id of the state's map: every write makes a new one, so an unchanged id means
    /// unchanged state. nil when nothing was applied under this root.
    public func stateID() -> UInt32? {
        let fd = bpf_obj_get(state)
        guard fd >= 0 else { return nil }
        return try? BPFMap(name: "dp_state", fd: OwnedDescriptor(fd)).info().id
    }

    /// The state bytes, or nil when nothing was applied under this root.
    public func readState() throws(BPFError) -> [UInt8]? {
        let fd = bpf_obj_get(state)
        if fd == -ENOENT { return nil }
        let map = BPFMap(name: "dp_state", fd: OwnedDescriptor(try checkFD(fd, .openPin(state))))
        let (_, chunk, entries, _, flags) = try map.info()
        if flags & UInt32(BPF_F_MMAPABLE) != 0 {
            return try map.withMappedBytes(entries * chunk, writable: false) { memory in
                let length = Int(UInt64(littleEndian: memory.loadUnaligned(as: UInt64.self)))
                return length <= memory.count - 8 ? Array(UnsafeRawBufferPointer(rebasing: memory[8..<8 + length])) : nil
            }
        }
        // Written by a build whose state was not mappable.
        var bytes = [UInt8](repeating: 0, count: entries * chunk)
        for i in 0..<entries {
            var key = UInt32(i)
            let rc = bytes.withUnsafeMutableBytes { bpf_map_lookup_elem(map.fd.raw, &key, $0.baseAddress! + i * chunk) }
            try check(rc, .mapLookup("dp_state"))
        }
        let length = bytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard length <= bytes.count - 8 else { return nil }
        return Array(bytes[8..<(8 + length)])
    }
}
