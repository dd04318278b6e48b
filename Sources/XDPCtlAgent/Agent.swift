import Glibc
import Logging
import NIOPosix
import SystemPackage
import XDPCtlBPF
import XDPCtlCore
import XDPCtlKit

/// `xdpctl agent`: applies a config file, then stays: applies it again on SIGHUP or when
/// the file changes, serves Prometheus metrics, announces the VIPs it serves through
/// BIRD, and on SIGTERM or SIGINT withdraws them and leaves with the data plane running.
/// The data plane never depends on it (docs/agent.md, docs/fleet.md).
///
/// One thread runs everything that touches the data plane, in the network namespace the
/// Dataplane entered; the metrics server's thread only renders what it refreshed.
public final class Agent {
    public let dataplane: Dataplane
    public let configPath: String
    public let metricsAddress: MetricsAddress?
    /// Which firewall rules get series of their own.
    public var metricsRules: RuleSeries = .all
    /// Where to announce the VIPs; nil: nowhere.
    public var bird: BirdTarget?
    private let logger: Logger
    private let metrics = AgentMetrics()
    /// The text the last apply made run; a change of the file to the same text is no change.
    private var applied: String?
    private var announcer: Announcer?
    /// The announcements need another look (after an apply, a health change, a drain).
    private var announceDue = true
    /// When to try BIRD again after a failure.
    private var announceRetryAt: ContinuousClock.Instant?
    static let announceRetry: Duration = .seconds(5)

    /// Edits come as bursts of events (write, close, rename); the apply waits this long
    /// after the last one.
    static let settle: Duration = .milliseconds(200)

    public init(dataplane: Dataplane, configPath: String, metricsAddress: MetricsAddress?, logger: Logger) {
        (self.dataplane, self.configPath, self.metricsAddress, self.logger) = (dataplane, configPath, metricsAddress, logger)
    }

    /// Applies the file and serves until SIGTERM or SIGINT. Call on the thread that
    /// entered the data plane's network namespace (the event loop's thread starts in it).
    /// Throws when it cannot start: the lock is taken, the first apply failed (nothing
    /// changed), the file's directory cannot be watched, or the metrics address cannot be
    /// bound.
    public func run() throws(AgentError) {
        let wakeups = try Wakeups(watching: configPath)
        let lock: OwnedDescriptor
        do {
            try dataplane.root.create()
            lock = try dataplane.root.lockAgent()
        } catch {
            throw .lock(error)
        }
        defer { withExtendedLifetime(lock) {} }
        let root = dataplane.root
        do { try root.mark(root.withdrawnMark, false) } catch { throw .lock(error) }
        try wakeups.watchMark(root.drainMark)
        announcer = bird.map(Announcer.init)
        // One event-loop thread serves scrapes and runs health checks; it starts in this
        // thread's network namespace.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // The bell's eventfd lives until the event loop has stopped ringing it.
        defer { withExtendedLifetime(wakeups) { try? group.syncShutdownGracefully() } }
        let scrapes = ScrapeQueue(bell: Bell(fd: wakeups.bellFD.raw))
        defer { scrapes.cancel() }
        let checker = HealthChecker(loop: group.next())
        // Listening before the first apply: an address in use then changes nothing.
        let server = try metricsAddress.map { address throws(AgentError) in
            try MetricsServer(address, group: group, registry: metrics.registry, scrapes: scrapes)
        }
        defer { server?.stop() }
        if let failure = apply(reason: "start", logFailure: false) { throw .firstApply(file: configPath, failure) }
        // A stop withdraws every announcement, whatever ends the loop.
        defer { withdrawAll() }
        var serving: Logger.Metadata = ["file": "\(configPath)", "pin_root": "\(dataplane.root.path)"]
        if let netns = dataplane.netns { serving["netns"] = "\(netns)" }
        if let bird { serving["bird_include"] = "\(bird.include)" }
        if var bound = metricsAddress, let port = server?.boundPort {
            bound.port = port
            serving["metrics"] = "\(bound)"
        }
        logger.info("serving", metadata: serving)

        var reloadAt: ContinuousClock.Instant?
        var followed: UInt32?
        while true {
            // The checks follow the running config, whoever applied it.
            let id = dataplane.root.stateID()
            if id != followed {
                followed = id
                announceDue = true
                do {
                    checker.follow(try dataplane.running()?.1)
                } catch {
                    logger.warning("cannot read the running config for health checks", metadata: ["error": "\(error.message(file: nil))"])
                }
            }
            if announceDue || announceRetryAt.map({ ContinuousClock.now >= $0 }) == true { announce() }
            checker.startDue()
            let wake = [reloadAt, checker.nextWake, announceRetryAt].compactMap { $0 }.min()
            for event in wakeups.wait(milliseconds: wake.map { Self.milliseconds(until: $0) } ?? -1) {
                switch event {
                case .signal(SIGHUP):
                    logger.info("SIGHUP: applying the file again")
                    _ = apply(reason: "SIGHUP", force: true)
                case .signal(let signal):
                    logger.info("stopping; the data plane keeps running", metadata: ["signal": "\(Self.name(of: signal))"])
                    return
                case .fileChanged:
                    reloadAt = .now + Self.settle
                case .drainChanged:
                    announceDue = true
                case .bell:
                    if scrapes.isWaiting {
                        var rules: [UInt8] = []
                        do { rules = try metrics.refresh(from: dataplane, rules: metricsRules) } catch {
                            logger.warning("cannot read the data plane's counters", metadata: ["error": "\(error.message(file: nil))"])
                        }
                        scrapes.answer(rules)
                    }
                }
            }
            record(checker.takeResults())
            if let due = reloadAt, ContinuousClock.now >= due {
                reloadAt = nil
                _ = apply(reason: "file changed")
            }
        }
    }

    /// Hands finished checks to the data plane, and logs the backends that went down or
    /// came back.
    private func record(_ results: [HealthCheckResult]) {
        guard !results.isEmpty else { return }
        do {
            for change in try dataplane.recordHealth(results) {
                let metadata: Logger.Metadata = ["interface": "\(change.interface)", "backend": "\(change.backendID)"]
                announceDue = true
                if change.down {
                    logger.warning("backend down: failed its health checks; it takes no new flows, its connections stay", metadata: metadata)
                } else {
                    logger.info("backend up: passed its health checks; it takes new flows again", metadata: metadata)
                }
            }
        } catch {
            logger.error("cannot record health check results", metadata: ["error": "\(error.message(file: nil))"])
        }
    }

    /// Reads and applies the file, and logs what happened; returns the failure, if any.
    /// Unless `force`, a file whose text is the one running changes nothing. A failed
    /// apply leaves the running config serving; it is logged unless not `logFailure`.
    private func apply(reason: String, force: Bool = false, logFailure: Bool = true) -> DataplaneError? {
        let start = ContinuousClock.now
        let context: Logger.Metadata = ["file": "\(configPath)", "reason": "\(reason)"]
        let text: String
        do { text = try Self.read(configPath) } catch {
            if logFailure { logger.error("cannot read the config file; the running config keeps serving", metadata: context.merging(["error": "\(error)"]) { a, _ in a }) }
            metrics.recordApply(succeeded: false, duration: .now - start)
            return .state("cannot read \(configPath): \(error)")
        }
        if !force, text == applied {
            metrics.recordFileRuns()
            return nil
        }
        withdrawRemoved(text)
        do {
            let result = try dataplane.apply(text)
            announceDue = true
            metrics.recordApply(succeeded: true, duration: .now - start)
            applied = text
            for w in result.warnings { logger.warning("\(w)", metadata: context) }
            var done = context
            done["generation"] = "\(result.generation)"
            if result.changed {
                done["changes"] = .array(result.changes.map { .string($0) })
                logger.info(result.patched ? "applied (patched the running firewall table)" : "applied", metadata: done)
            } else {
                logger.info("no changes", metadata: done)
            }
            return nil
        } catch {
            metrics.recordApply(succeeded: false, duration: .now - start)
            guard logFailure else { return error }
            logger.error("apply failed; the running config keeps serving",
                         metadata: context.merging(["error": "\(error.message(file: configPath))"]) { a, _ in a })
            return error
        }
    }

    /// Announces what the node serves, healthy, unless it is drained; then answers a
    /// drain (the withdrawn mark) once nothing is announced. A failure is logged and
    /// tried again in a few seconds.
    private func announce() {
        announceDue = false
        let root = dataplane.root
        let drained = root.marked(root.drainMark)
        var vips: [IPAddress] = []
        if !drained {
            do { vips = try dataplane.servedVIPs().filter(\.healthy).map(\.address) } catch {
                logger.error("cannot read the served VIPs", metadata: ["error": "\(error.message(file: nil))"])
                announceRetryAt = .now + Self.announceRetry
                return
            }
        }
        if let announcer {
            let before = announcer.announced
            do { try announcer.announce(vips) } catch {
                logger.error("cannot announce through BIRD; trying again in \(Self.announceRetry)", metadata: ["error": "\(error)"])
                announceRetryAt = .now + Self.announceRetry
                return
            }
            if before != vips {
                let added = vips.filter { !(before ?? []).contains($0) }, removed = (before ?? []).filter { !vips.contains($0) }
                logger.info(drained ? "drained: announcing nothing" : "announcements changed", metadata: [
                    "announced": .array(vips.map { .string("\($0)") }),
                    "added": .array(added.map { .string("\($0)") }), "withdrawn": .array(removed.map { .string("\($0)") }),
                ])
            }
        }
        announceRetryAt = nil
        do { try root.mark(root.withdrawnMark, drained) } catch {
            logger.error("cannot answer the drain mark", metadata: ["error": "\(error)"])
        }
    }

    /// Before an apply of `text`: withdraws the announced VIPs it no longer serves, so a
    /// router stops sending them before the programs stop taking them.
    private func withdrawRemoved(_ text: String) {
        guard let announcer, let announced = announcer.announced, let next = try? ConfigDecoder.decode(text) else { return }
        let kept = Set(next.interfaces.flatMap { $0.loadBalancers.map(\.vip) })
        let remaining = announced.filter(kept.contains)
        guard remaining != announced else { return }
        announceDue = true // should the apply fail, they come back
        let removed: Logger.MetadataValue = .array(announced.filter { !kept.contains($0) }.map { .string("\($0)") })
        do {
            try announcer.announce(remaining)
            logger.info("withdrew the VIPs the new config removes, before applying it", metadata: ["withdrawn": removed])
        } catch {
            logger.error("cannot withdraw the VIPs the new config removes", metadata: ["withdrawn": removed, "error": "\(error)"])
        }
    }

    /// On the way out: nothing stays announced.
    private func withdrawAll() {
        guard let announcer else { return }
        do {
            try announcer.announce([])
            logger.info("withdrew every announcement")
        } catch {
            logger.error("cannot withdraw the announcements", metadata: ["error": "\(error)"])
        }
        try? dataplane.root.mark(dataplane.root.withdrawnMark, false)
    }

    private static func read(_ path: String) throws -> String {
        let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec)
        defer { try? fd.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) }
            if n == 0 { break }
            bytes += chunk[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func milliseconds(until instant: ContinuousClock.Instant) -> Int32 {
        let left = instant - .now
        return left <= .zero ? 0 : Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
    }

    private static func name(of signal: Int32) -> String {
        switch signal {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        default: "signal \(signal)"
        }
    }
}
