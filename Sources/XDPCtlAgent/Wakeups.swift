import CXDPCtlShims
import Glibc
import Synchronization
import SystemPackage
import XDPCtlBPF

/// What wakes the agent's loop: a signal, a change to the config file, a drain mark put
/// in the pin root or taken away (xdpctl drain), or the bell (a scrape that waits for
/// fresh figures). One thread polls three descriptors: the signal handler's pipe, inotify
/// (watching the file's directory and the pin root), and an eventfd that the event loop's
/// thread writes. (swift-system has none of them; the C shims make the pipe, whose
/// handler Swift cannot write, and the eventfd, which Glibc's module lacks.)
final class Wakeups {
    enum Event: Equatable {
        case signal(Int32)
        case fileChanged
        case drainChanged
        case bell
    }

    static let signals: [Int32] = [SIGHUP, SIGTERM, SIGINT]

    /// The process's one signal pipe: never closed.
    private let signalFD: Int32
    private let inotifyFD: OwnedDescriptor
    let bellFD: OwnedDescriptor
    private let fileName: String
    private let fileWatch: Int32
    private var drainWatch: Int32 = -1
    private var drainName = ""

    /// Catches SIGHUP, SIGTERM and SIGINT, whichever thread they reach (and unblocks them
    /// here: a test runner's children inherit its mask). Watches the directory of `path`
    /// for writes, renames and removals of its name (editors and config managers replace
    /// a file by renaming another onto it).
    init(watching path: String) throws(AgentError) {
        signalFD = try Self.check(Self.signals.withUnsafeBufferPointer {
            xdpctl_signal_fd($0.baseAddress, Int32($0.count))
        }, "catch signals")
        bellFD = OwnedDescriptor(try Self.check(xdpctl_event_fd(), "create an eventfd"))
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        fileName = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let inotify = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        inotifyFD = OwnedDescriptor(try Self.check(inotify < 0 ? -errno : inotify, "start inotify"))
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM)
        fileWatch = inotify_add_watch(inotify, directory, mask)
        guard fileWatch >= 0 else { throw .watch(directory, Errno(rawValue: errno)) }
    }

    /// Also watches for `mark` (a directory) to be made or removed.
    func watchMark(_ mark: String) throws(AgentError) {
        let slash = mark.lastIndex(of: "/") ?? mark.startIndex
        let directory = String(mark[..<slash])
        drainName = String(mark[mark.index(after: slash)...])
        drainWatch = inotify_add_watch(inotifyFD.raw, directory, UInt32(IN_CREATE | IN_DELETE))
        guard drainWatch >= 0 else { throw .watch(directory, Errno(rawValue: errno)) }
    }

    /// Waits up to `milliseconds` (-1: without end) and returns what happened.
    func wait(milliseconds: Int32) -> [Event] {
        var fds = [signalFD, inotifyFD.raw, bellFD.raw].map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        guard poll(&fds, nfds_t(fds.count), milliseconds) > 0 else { return [] }
        var events: [Event] = []
        if fds[0].revents != 0 {
            while case let signal = xdpctl_read_signal(signalFD), signal > 0 { events.append(.signal(signal)) }
        }
        if fds[1].revents != 0 {
            let (file, drain) = readInotify()
            if file { events.append(.fileChanged) }
            if drain { events.append(.drainChanged) }
        }
        if fds[2].revents != 0 {
            var count: UInt64 = 0
            _ = read(bellFD.raw, &count, 8)
            events.append(.bell)
        }
        return events
    }

    /// Drains the inotify queue; whether an event named the config file, and the mark.
    private func readInotify() -> (file: Bool, drain: Bool) {
        var (named, drain) = (false, false)
        let size = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let n = read(inotifyFD.raw, buffer, size)
            guard n > 0 else { return (named, drain) }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                let nameStart = buffer + offset + MemoryLayout<inotify_event>.size
                if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    (named, drain) = (true, true) // events were lost: one may have been either's
                } else if event.len > 0 {
                    let name = String(cString: nameStart.assumingMemoryBound(to: CChar.self))
                    // "..data": a Kubernetes ConfigMap volume swaps that symlink, which the
                    // file's name points through, in one rename.
                    if event.wd == fileWatch && (name == fileName || name == "..data") { named = true }
                    if event.wd == drainWatch && name == drainName { drain = true }
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
