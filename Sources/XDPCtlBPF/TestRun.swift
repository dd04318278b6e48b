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
}
