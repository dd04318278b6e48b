import CXDPCtlShims
import Glibc
import Synchronization
import SystemPackage
import XDPCtlBPF

/// What wakes the agent's loop: a signal, a change to the config file, or the bell (a
/// scrape that waits for fresh figures). One thread polls three descriptors: a
/// signalfd, an inotify watch on the file's directory, and an eventfd that the event
/// loop's thread writes. (swift-system has none of the three calls; Glibc's module lacks signalfd and
/// eventfd, which the C shims wrap.)
final class Wakeups {
    enum Event: Equatable {
        case signal(Int32)
        case fileChanged
        case bell
    }

    static let signals: [Int32] = [SIGHUP, SIGTERM, SIGINT]

    private let signalFD: OwnedDescriptor
    private let inotifyFD: OwnedDescriptor
    let bellFD: OwnedDescriptor
    private let fileName: String

    /// Blocks SIGHUP, SIGTERM and SIGINT in the calling thread, which must be the
    /// process's only one so far: threads started later inherit the mask, so the signals
    /// reach only the signalfd. Watches the directory of `path` for writes, renames and
    /// removals of its name (editors and config managers replace a file by renaming
    /// another onto it).
    init(watching path: String) throws(AgentError) {
        signalFD = OwnedDescriptor(try Self.check(Self.signals.withUnsafeBufferPointer {
            xdpctl_signal_fd($0.baseAddress, Int32($0.count))
        }, "block signals"))
        bellFD = OwnedDescriptor(try Self.check(xdpctl_event_fd(), "create an eventfd"))
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        fileName = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let inotify = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        inotifyFD = OwnedDescriptor(try Self.check(inotify < 0 ? -errno : inotify, "start inotify"))
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM)
        guard inotify_add_watch(inotify, directory, mask) >= 0 else {
            throw .watch(directory, Errno(rawValue: errno))
        }
    }

    /// Waits up to `milliseconds` (-1: without end) and returns what happened.
    func wait(milliseconds: Int32) -> [Event] {
        var fds = [signalFD, inotifyFD, bellFD].map { pollfd(fd: $0.raw, events: Int16(POLLIN), revents: 0) }
        guard poll(&fds, nfds_t(fds.count), milliseconds) > 0 else { return [] }
        var events: [Event] = []
        if fds[0].revents != 0 {
            while case let signal = xdpctl_read_signal(signalFD.raw), signal > 0 { events.append(.signal(signal)) }
        }
        if fds[1].revents != 0, readInotify() { events.append(.fileChanged) }
        if fds[2].revents != 0 {
            var count: UInt64 = 0
            _ = read(bellFD.raw, &count, 8)
            events.append(.bell)
        }
        return events
    }

    /// Drains the inotify queue; whether an event named the config file.
    private func readInotify() -> Bool {
        var named = false
        let size = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let n = read(inotifyFD.raw, buffer, size)
            guard n > 0 else { return named }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                let nameStart = buffer + offset + MemoryLayout<inotify_event>.size
                if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    named = true // events were lost: one of them may have been the file's
                } else if event.len > 0 {
                    let name = String(cString: nameStart.assumingMemoryBound(to: CChar.self))
                    if name == fileName { named = true }
                }
                offset += MemoryLayout<inotify_event>.size + Int(event.len)
            }
        }
    }

    private static func check(_ rc: Int32, _ what: String) throws(AgentError) -> Int32 {
        guard rc >= 0 else { throw .system(what, Errno(rawValue: -rc)) }
        return rc
    }
}

/// Wakes the agent's loop from another thread (the event loop's).
struct Bell: Sendable {
    let fd: Int32

    func ring() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }
}

/// What the event loop's thread hands the agent's loop: posted there, taken here.
final class Mailbox<Item: Sendable>: Sendable {
    private let items = Mutex<[Item]>([])

    func post(_ item: Item) { items.withLock { $0.append(item) } }

    func take() -> [Item] { items.withLock { i in defer { i = [] }; return i } }

    var isEmpty: Bool { items.withLock { $0.isEmpty } }
}
