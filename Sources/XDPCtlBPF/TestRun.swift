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
        var opts = bpf_test_run_opts()
        opts.sz = MemoryLayout<bpf_test_run_opts>.size
        opts.repeat = Int32(count)
        opts.data_size_in = UInt32(input.count)
        opts.data_size_out = UInt32(output.count)
        let rc = input.withUnsafeMutableBytes { inBuf in
            output.withUnsafeMutableBytes { outBuf in
                opts.data_in = UnsafeRawPointer(inBuf.baseAddress)
                opts.data_out = outBuf.baseAddress
                return bpf_prog_test_run_opts(programFD, &opts)
            }
        }
        try check(rc, .testRun("fd \(programFD)"))
        return Result(returnValue: opts.retval, output: Array(output.prefix(Int(opts.data_size_out))),
                      duration: opts.duration)
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
        var opts = bpf_test_run_opts()
        opts.sz = MemoryLayout<bpf_test_run_opts>.size
        opts.repeat = Int32(count)
        opts.flags = UInt32(BPF_F_TEST_XDP_LIVE_FRAMES)
        opts.data_size_in = UInt32(input.count)
        opts.ctx_size_in = UInt32(MemoryLayout<xdp_md>.size)
        let rc = input.withUnsafeMutableBytes { data in
            withUnsafeMutableBytes(of: &context) { ctx in
                opts.data_in = UnsafeRawPointer(data.baseAddress)
                opts.ctx_in = UnsafeRawPointer(ctx.baseAddress)
                return bpf_prog_test_run_opts(programFD, &opts)
            }
        }
        try check(rc, .testRun("fd \(programFD), live frames on ifindex \(ifindex)"))
        return opts.duration
    }
}
