import CLibBPF

/// BPF_PROG_TEST_RUN: runs a program on a packet in the kernel without a device.
public enum TestRun {
    public struct Result: Sendable {
        public let returnValue: UInt32
        public let output: [UInt8]
        /// Mean nanoseconds per run as the kernel measured it.
        public let duration: UInt32
    }

    /// Runs an XDP program on `packet`, `count` times. `ingressIfindex` (nonzero): the
    /// interface the packet arrives on, as the program reads it from its context (the
    /// interface must exist in the calling thread's network namespace).
    public static func run(programFD: Int32, packet: [UInt8], repeat count: Int = 1, ingressIfindex: UInt32 = 0) throws(BPFError) -> Result {
        var input = packet
        var output = [UInt8](repeating: 0, count: packet.count + 256)
        var context = xdp_md()
        context.data_end = UInt32(packet.count)
        context.ingress_ifindex = ingressIfindex
        let opts = LibBPFOptions<bpf_test_run_opts>()
        opts.pointer.pointee.repeat = Int32(count)
        opts.pointer.pointee.data_size_in = UInt32(input.count)
        opts.pointer.pointee.data_size_out = UInt32(output.count)
        let rc = input.withUnsafeMutableBytes { inBuf in
            output.withUnsafeMutableBytes { outBuf in
                withUnsafeMutableBytes(of: &context) { ctx in
                    opts.pointer.pointee.data_in = UnsafeRawPointer(inBuf.baseAddress)
                    opts.pointer.pointee.data_out = outBuf.baseAddress
                    if ingressIfindex != 0 {
                        opts.pointer.pointee.ctx_in = UnsafeRawPointer(ctx.baseAddress)
                        opts.pointer.pointee.ctx_size_in = UInt32(ctx.count)
                    }
                    return bpf_prog_test_run_opts(programFD, opts.pointer)
                }
            }
        }
        try check(rc, .testRun("fd \(programFD)"))
        let result = opts.pointer.pointee
        return Result(returnValue: result.retval, output: Array(output.prefix(Int(result.data_size_out))),
                      duration: result.duration)
    }
}
