import SystemPackage

/// An owned file descriptor (a program, map or link, the pin root's lock), closed when
/// the last reference goes away: swift-system's FileDescriptor is a plain value that
/// closes only when told, and BPF objects are shared between the object that loaded them
/// and the maps and links handed out.
public final class OwnedDescriptor: @unchecked Sendable {
    public let descriptor: FileDescriptor

    public init(_ raw: Int32) { descriptor = FileDescriptor(rawValue: raw) }
    public init(_ descriptor: FileDescriptor) { self.descriptor = descriptor }

    public var raw: Int32 { descriptor.rawValue }

    deinit { try? descriptor.close() }
}
