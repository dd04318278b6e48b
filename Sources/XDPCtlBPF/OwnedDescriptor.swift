import Glibc

/// An owned file descriptor, closed when the last reference goes away.
public final class FileDescriptor: @unchecked Sendable {
    public let raw: Int32

    public init(_ raw: Int32) { self.raw = raw }

    deinit { close(raw) }
}
