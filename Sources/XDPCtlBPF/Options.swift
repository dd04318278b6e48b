/// A libbpf options struct (`bpf_*_opts`) built in place in zeroed memory, with `sz` set.
///
/// libbpf refuses options whose bytes past the fields it knows are not zero, padding
/// included, and a Swift value of an imported C struct does not promise zero padding (a
/// copy may carry stack garbage there). `bpf_xdp_query_opts` failed that way now and
/// then, so options are never built as Swift values: set fields through `pointer`.
final class LibBPFOptions<T> {
    let pointer: UnsafeMutablePointer<T>

    init() {
        pointer = .allocate(capacity: 1)
        let raw = UnsafeMutableRawPointer(pointer)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.size)
        raw.storeBytes(of: MemoryLayout<T>.size, as: Int.self) // every opts struct starts with size_t sz
    }

    deinit { pointer.deallocate() }
}
