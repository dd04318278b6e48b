import CLibBPF

/// BPF_PROG_TEST_RUN: runs a program on a packet in the kernel without a device.
public enum TestRun {
    public struct Result: Sendable {
        public let returnValue: UInt32
        public let output: [UInt8]
        /// Mean nanoseconds per run as the kernel measured it.
        public let duration: UInt32
    }

    public static func run(programFD: Int32, packet: [UInt8], repeat count: Int = 1) throws(BPFError) -> Result {
        var input = packet
        var output = [UInt8](repeating: 0, count: packet.count + 256)
        let opts = LibBPFOptions<bpf_test_run_opts>()
        opts.pointer.pointee.repeat = Int32(count)
        opts.pointer.pointee.data_size_in = UInt32(input.count)
        opts.pointer.pointee.data_size_out = UInt32(output.count)
        let rc = input.withUnsafeMutableBytes { inBuf in
            output.withUnsafeMutableBytes { outBuf in
                opts.pointer.pointee.data_in = UnsafeRawPointer(inBuf.baseAddress)
                opts.pointer.pointee.data_out = outBuf.baseAddress
                return bpf_prog_test_run_opts(programFD, opts.pointer)
            }
        }
        try check(rc, .testRun("fd \(programFD)"))
        let result = opts.pointer.pointee
        return Result(returnValue: result.retval, output: Array(output.prefix(Int(result.data_size_out))),
                      duration: result.duration)
    }

    /// BPF_F_TEST_XDP_LIVE_FRAMES: runs the program `count` times on copies of `packet` as
    /// if received on `ifindex` (in the caller's network namespace), and really transmits
    /// or redirects the frames it returns XDP_TX or XDP_REDIRECT for. Returns the kernel's
    /// mean nanoseconds per frame.
    public static func live(programFD: Int32, packet: [UInt8], ifindex: Int32, count: Int) throws(BPFError) -> UInt32 {
        var input = packet
        var context = xdp_md()
        context.ingress_ifindex = UInt32(ifindex)
        context.data_end = UInt32(packet.count) // the kernel checks the context describes the frame
        let opts = LibBPFOptions<bpf_test_run_opts>()
        opts.pointer.pointee.repeat = Int32(count)
        opts.pointer.pointee.flags = UInt32(BPF_F_TEST_XDP_LIVE_FRAMES)
        opts.pointer.pointee.data_size_in = UInt32(input.count)
        opts.pointer.pointee.ctx_size_in = UInt32(MemoryLayout<xdp_md>.size)
        let rc = input.withUnsafeMutableBytes { data in
            withUnsafeMutableBytes(of: &context) { ctx in
                opts.pointer.pointee.data_in = UnsafeRawPointer(data.baseAddress)
                opts.pointer.pointee.ctx_in = UnsafeRawPointer(ctx.baseAddress)
                return bpf_prog_test_run_opts(programFD, opts.pointer)
            }
        }
        try check(rc, .testRun("fd \(programFD), live frames on ifindex \(ifindex)"))
        return opts.pointer.pointee.duration
    }
}
