import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import XDPCtlCore

/// One health check, run on SwiftNIO's event loop: a TCP connect, or an HTTP/1.1 GET
/// whose response status is read (NIO's parser) and judged. It leaves from the host's
/// stack in the agent's network namespace, and closes with a reset so that a thousand
/// checks a second leave no TIME_WAIT sockets behind (as HAProxy's checks do).
enum HealthProbe {
    /// What a check found: 0 passed; > 0 the HTTP status that failed; < 0 -errno.
    typealias Outcome = (result: Int32, latencyMicroseconds: UInt32)

    static func run(_ check: LoadBalancer.HealthCheck, address: String, port: Int, on loop: any EventLoop,
                    done: @escaping @Sendable (Outcome) -> Void) {
        let start = NIODeadline.now()
        let finish = { @Sendable (result: Int32) in
            let micros = (NIODeadline.now() - start).nanoseconds / 1000
            done((result, UInt32(clamping: micros)))
        }
        let target: SocketAddress
        do { target = try SocketAddress(ipAddress: address, port: port) } catch {
            return finish(-EINVAL)
        }
        let timeout = TimeAmount.milliseconds(Int64(check.timeoutMs))
        let status = loop.makePromise(of: Int.self)
        let bootstrap = ClientBootstrap(group: loop).connectTimeout(timeout)
        if check.kind == .http {
            let request = request(check, address: address, port: port)
            _ = bootstrap.channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(StatusReader(request: request, status: status))
                }
            }
        }
        let deadline = loop.scheduleTask(in: timeout) { status.fail(ChannelError.connectTimeout(timeout)) }
        bootstrap.connect(to: target).whenComplete { connected in
            switch connected {
            case .failure(let error):
                status.fail(error)
            case .success(let channel):
                if check.kind == .tcp { status.succeed(0) }
                status.futureResult.whenComplete { _ in reset(channel) }
            }
        }
        status.futureResult.whenComplete { answer in
            deadline.cancel()
            switch answer {
            case .success(let code): finish(check.kind == .tcp || check.passes(status: code) ? 0 : Int32(code))
            case .failure(let error): finish(-errno(of: error))
            }
        }
    }

    private static func request(_ check: LoadBalancer.HealthCheck, address: String, port: Int) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: check.path)
        head.headers.add(name: "Host", value: LoadBalancer.endpoint(address, port))
        head.headers.add(name: "User-Agent", value: "xdpctl-agent health check")
        head.headers.add(name: "Accept", value: "*/*")
        head.headers.add(name: "Connection", value: "close")
        return head
    }

    /// Closes with SO_LINGER 0: a reset, no TIME_WAIT.
    private static func reset(_ channel: any Channel) {
        if let options = channel as? any SocketOptionProvider {
            options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    /// The errno behind a connect or read failure (ETIMEDOUT for the check's timeout).
    private static func errno(of error: any Error) -> Int32 {
        switch error {
        case let e as IOError: return e.errnoCode
        case let e as NIOConnectionError: return e.connectionErrors.first.map { errno(of: $0.error) } ?? EHOSTUNREACH
        case ChannelError.connectTimeout: return ETIMEDOUT
        case ChannelError.eof, ChannelError.ioOnClosedChannel, ChannelError.alreadyClosed: return ECONNRESET
        case is HTTPParserError: return EPROTO
        default: return EIO
        }
    }
}

/// Sends the check's request once connected and reads the response's status.
private final class StatusReader: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let request: HTTPRequestHead
    private let status: EventLoopPromise<Int>

    init(request: HTTPRequestHead, status: EventLoopPromise<Int>) {
        (self.request, self.status) = (request, status)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { status.succeed(Int(head.status.code)) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        status.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        status.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
