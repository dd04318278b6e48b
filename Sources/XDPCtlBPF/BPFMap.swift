import CLibBPF
import CXDPCtlShims
import Foundation
import Glibc
import SystemPackage

/// A BPF map by descriptor, with typed element access. `Key` and `Value` are ABI structs
/// from xdpctl_abi.h (explicitly padded, so Swift's field-wise copies are exact).
public struct BPFMap: Sendable {
    public let name: String
    public let fd: OwnedDescriptor

    public init(name: String, fd: OwnedDescriptor) {
        self.name = name
        self.fd = fd
    }

    /// Opens a pinned map.
    public static func open(pinned path: String) throws(BPFError) -> BPFMap {
        let fd = try checkFD(bpf_obj_get(path), .openPin(path))
        return BPFMap(name: String(path.split(separator: "/").last ?? ""), fd: OwnedDescriptor(fd))
    }

    /// Creates an unpinned map (used for the inner maps of a new generation).
    public static func create(type: bpf_map_type, name: String, keySize: Int, valueSize: Int,
                              maxEntries: Int, flags: UInt32 = 0) throws(BPFError) -> BPFMap {
        let opts = LibBPFOptions<bpf_map_create_opts>()
        opts.pointer.pointee.map_flags = flags
        let fd = try checkFD(bpf_map_create(type, name, UInt32(keySize), UInt32(valueSize),
                                            UInt32(maxEntries), opts.pointer), .createMap(name))
        return BPFMap(name: name, fd: OwnedDescriptor(fd))
    }

    public func pin(at path: String) throws(BPFError) {
        try check(bpf_obj_pin(fd.raw, path), .pin(path))
    }

    public func update<Key: BitwiseCopyable, Value: BitwiseCopyable>(_ key: Key, _ value: Value) throws(BPFError) {
        var key = key, value = value
        try check(bpf_map_update_elem(fd.raw, &key, &value, UInt64(BPF_ANY)), .mapUpdate(name))
    }

    /// Removes `key`; a key that is not there is not an error.
    public func delete<Key: BitwiseCopyable>(_ key: Key) throws(BPFError) {
        var key = key
        let rc = bpf_map_delete_elem(fd.raw, &key)
        if rc != -ENOENT { try check(rc, .mapDelete(name)) }
    }

    /// The value at `key`, or nil when there is none.
    public func lookup<Key: BitwiseCopyable, Value: BitwiseCopyable>(_ key: Key, as: Value.Type = Value.self) throws(BPFError) -> Value? {
        var key = key
        let value = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<Value>.size, alignment: 8)
        defer { value.deallocate() }
        let rc = bpf_map_lookup_elem(fd.raw, &key, value)
        if rc == -ENOENT { return nil }
        try check(rc, .mapLookup(name))
        return value.load(as: Value.self)
    }

    /// Every key of a hash map, as one snapshot (keys added meanwhile may be missed).
    public func keys<Key: BitwiseCopyable>(as: Key.Type = Key.self) throws(BPFError) -> [Key] {
        var keys: [Key] = []
        let current = UnsafeMutablePointer<Key>.allocate(capacity: 1), next = UnsafeMutablePointer<Key>.allocate(capacity: 1)
        defer { current.deallocate(); next.deallocate() }
        var rc = bpf_map_get_next_key(fd.raw, nil, next)
        while rc == 0 {
            keys.append(next.pointee)
            current.pointee = next.pointee
            rc = bpf_map_get_next_key(fd.raw, current, next)
        }
        if rc != -ENOENT { try check(rc, .mapLookup(name)) }
        return keys
    }

    /// Writes an array map from index 0 in one batch call per chunk.
    public func fill<Value: BitwiseCopyable>(_ values: [Value]) throws(BPFError) {
        let chunk = 8192
        let opts = LibBPFOptions<bpf_map_batch_opts>()
        var start = 0
        while start < values.count {
            let end = min(start + chunk, values.count)
            var keys = (UInt32(start)..<UInt32(end)).map { $0 }
            var count = UInt32(end - start)
            let rc = values[start..<end].withUnsafeBufferPointer { buf in
                bpf_map_update_batch(fd.raw, &keys, buf.baseAddress, &count, opts.pointer)
            }
            try check(rc, .mapUpdate(name))
            start = end
        }
    }

    // MARK: per-CPU maps

    public static var possibleCPUs: Int { Int(libbpf_num_possible_cpus()) }

    /// One value per possible CPU.
    public func lookupPerCPU<Value: BitwiseCopyable>(_ key: UInt32, as: Value.Type = Value.self) throws(BPFError) -> [Value] {
        let cpus = Self.possibleCPUs
        let stride = (MemoryLayout<Value>.size + 7) & ~7
        var key = key
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: stride * cpus, alignment: 8)
        defer { buffer.deallocate() }
        try check(bpf_map_lookup_elem(fd.raw, &key, buffer), .mapLookup(name))
        return (0..<cpus).map { buffer.load(fromByteOffset: $0 * stride, as: Value.self) }
    }

    /// The values of keys 0 ..< count of a per-CPU array, one per possible CPU each
    /// (key k, CPU c at k * CPUs + c), read in batches: a few system calls for 131,072
    /// counters, not one per key. `Value`'s size must be a multiple of 8, as the kernel
    /// lays per-CPU values out.
    public func lookupPerCPU<Value: BitwiseCopyable>(keys count: Int, as: Value.Type = Value.self) throws(BPFError) -> [Value] {
        let cpus = Self.possibleCPUs, size = MemoryLayout<Value>.size
        precondition(size % 8 == 0, "per-CPU values are laid out in 8-byte steps")
        guard count > 0 else { return [] }
        let values = UnsafeMutableRawBufferPointer.allocate(byteCount: count * cpus * size, alignment: 8)
        defer { values.deallocate() }
        values.initializeMemory(as: UInt8.self, repeating: 0)
        var keys = [UInt32](repeating: 0, count: count)
        let opts = LibBPFOptions<bpf_map_batch_opts>()
        var done = 0, position: UInt32 = 0, next: UInt32 = 0
        while done < count {
            var n = UInt32(min(8192, count - done))
            let first = done == 0
            let rc = keys.withUnsafeMutableBufferPointer { k in
                withUnsafeMutablePointer(to: &position) { from in
                    bpf_map_lookup_batch(fd.raw, first ? nil : from, &next, k.baseAddress! + done,
                                         values.baseAddress! + done * cpus * size, &n, opts.pointer)
                }
            }
            if rc < 0 && rc != -ENOENT { try check(rc, .mapLookup(name)) }
            done += Int(n)
            if rc == -ENOENT || n == 0 { break }
            position = next
        }
        var out = [Value]()
        out.reserveCapacity(count * cpus)
        for i in 0..<count * cpus { out.append(values.load(fromByteOffset: i * size, as: Value.self)) }
        // An array's batch comes back in key order; keys past `done` (past the map's end) read as zero.
        precondition(keys.prefix(done).enumerated().allSatisfy { UInt32($0.offset) == $0.element }, "batch keys out of order")
        return out
    }

    /// Sets the same value on every CPU.
    public func updatePerCPU<Key: BitwiseCopyable, Value: BitwiseCopyable>(_ key: Key, _ value: Value) throws(BPFError) {
        let stride = (MemoryLayout<Value>.size + 7) & ~7
        var key = key
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: stride * Self.possibleCPUs, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: stride * Self.possibleCPUs)
        for cpu in 0..<Self.possibleCPUs { buffer.storeBytes(of: value, toByteOffset: cpu * stride, as: Value.self) }
        try check(bpf_map_update_elem(fd.raw, &key, buffer, UInt64(BPF_ANY)), .mapUpdate(name))
    }

    /// Key size, value size, capacity and creation flags as the kernel reports them.
    public func info() throws(BPFError) -> (keySize: Int, valueSize: Int, maxEntries: Int, id: UInt32, flags: UInt32) {
        var info = bpf_map_info()
        var len = UInt32(MemoryLayout<bpf_map_info>.size)
        try check(bpf_obj_get_info_by_fd(fd.raw, &info, &len), .mapLookup(name))
        return (Int(info.key_size), Int(info.value_size), Int(info.max_entries), info.id, info.map_flags)
    }
}

extension BPFMap {
    /// Runs `body` over the first `count` values of an array map created with
    /// BPF_F_MMAPABLE, mapped into this process: no system call per value, and no copy.
    public func withMappedValues<Value: BitwiseCopyable, R>(_ count: Int, as: Value.Type = Value.self, writable: Bool,
                                                            _ body: (UnsafeMutableBufferPointer<Value>) throws(BPFError) -> R) throws(BPFError) -> R {
        precondition(MemoryLayout<Value>.stride % 8 == 0, "array values sit at 8-byte strides")
        return try withMappedBytes(count * MemoryLayout<Value>.stride, writable: writable) { (raw) throws(BPFError) -> R in
            try body(raw.bindMemory(to: Value.self))
        }
    }

    /// Runs `body` over the first `count` bytes of an array map created with
    /// BPF_F_MMAPABLE (its values one after the other, each padded to 8 bytes).
    public func withMappedBytes<R>(_ count: Int, writable: Bool,
                                   _ body: (UnsafeMutableRawBufferPointer) throws(BPFError) -> R) throws(BPFError) -> R {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let length = max(page, (count + page - 1) / page * page)
        let base = mmap(nil, length, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd.raw, 0)
        guard let base, base != MAP_FAILED else { throw BPFError(.mapMemory(name), errno: errno) }
        defer { munmap(base, length) }
        return try body(UnsafeMutableRawBufferPointer(start: base, count: count))
    }

    /// Stores `value` as the first 32-bit word of a mappable map's memory, in one atomic
    /// store: a program reading the word sees the old value or the new one.
    public func storeWord(_ value: UInt32) throws(BPFError) {
        try withMappedBytes(4, writable: true) { memory in
            xdpctl_store_word(memory.baseAddress!.assumingMemoryBound(to: UInt32.self), value)
        }
    }

    /// The inner map an ARRAY_OF_MAPS holds at `index` (userspace lookups return its id).
    public func innerMap(at index: UInt32) throws(BPFError) -> BPFMap? {
        guard let id: UInt32 = try lookup(index) else { return nil }
        let fd = bpf_map_get_fd_by_id(id)
        if fd == -ENOENT { return nil }
        return BPFMap(name: "\(name)[\(index)]", fd: OwnedDescriptor(try checkFD(fd, .openPin("map id \(id)"))))
    }

    /// Kernel memory charged to the map ("memlock" in its fdinfo), in bytes.
    public func memoryBytes() -> Int {
        guard let file = try? FileDescriptor.open(FilePath("/proc/self/fdinfo/\(fd.raw)"), .readOnly) else { return 0 }
        defer { try? file.close() }
        var bytes = [UInt8](repeating: 0, count: 4096)
        guard let count = try? bytes.withUnsafeMutableBytes({ try file.read(into: $0) }) else { return 0 }
        for line in String(decoding: bytes[..<count], as: UTF8.self).split(separator: "\n") where line.hasPrefix("memlock:") {
            return Int(line.dropFirst("memlock:".count).filter(\.isNumber)) ?? 0
        }
        return 0
    }
}
