import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import XDPCtlCore

/// Where the metrics server listens: a host (IPv4 or IPv6 literal, or a name) and a port.
public struct MetricsAddress: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    /// "HOST:PORT", "[IPV6]:PORT"; nil for anything else.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil
        }
        guard !host.isEmpty else { return nil }
        (self.host, self.port) = (host, port)
    }

    public var description: String { LoadBalancer.endpoint(host, port) }
}

/// Scrapes waiting for the agent's loop to refresh the figures: the server's threads
/// never read the data plane themselves (the loop's thread is in the right network
/// namespace and serializes every access to the pins).
final class ScrapeQueue: Sendable {
    private let waiting = Mailbox<EventLoopPromise<[UInt8]>>()
    private let bell: Bell

    init(bell: Bell) { self.bell = bell }

    var isWaiting: Bool { !waiting.isEmpty }

    /// A future the loop completes after its next refresh, with the text to serve after
    /// the registry's (the per-rule series).
    func request(on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        let promise = loop.makePromise(of: [UInt8].self)
        waiting.post(promise)
        bell.ring()
        return promise.futureResult
    }

    /// Called as the agent stops: the scrapes still waiting get no answer (their
    /// connections close with the server).
    func cancel() {
        for promise in waiting.take() { promise.fail(ChannelError.ioOnClosedChannel) }
    }

    /// Called by the loop after a refresh: every scrape waiting renders now.
    func answer(_ rules: [UInt8]) {
        for promise in waiting.take() { promise.succeed(rules) }
    }
}

/// `GET /metrics` in Prometheus's text exposition format, served with SwiftNIO's HTTP/1
/// server (its parser; xdpctl writes none), on the agent's event loop.
final class MetricsServer {
    private let channel: any Channel

    /// Starts listening on `group`, whose thread serves in the network namespace of the
    /// thread that started it.
    init(_ address: MetricsAddress, group: any EventLoopGroup, registry: PrometheusCollectorRegistry, scrapes: ScrapeQueue) throws(AgentError) {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(registry: registry, scrapes: scrapes))
                }
            }
        do {
            channel = try bootstrap.bind(host: address.host, port: address.port).wait()
        } catch {
            throw .listen(address.description, "\(error)")
        }
    }

    /// The address it listens on (the port the kernel chose for port 0).
    var boundPort: Int? { channel.localAddress?.port }

    func stop() {
        try? channel.close().wait()
    }
}

/// One connection's requests: /metrics after a refresh, 404 elsewhere, 405 for
/// methods other than GET and HEAD.
private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private let scrapes: ScrapeQueue
    private var head: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry, scrapes: ScrapeQueue) {
        (self.registry, self.scrapes) = (registry, scrapes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(context, head)
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        guard head.method == .GET || head.method == .HEAD else {
            return send(context, head, .methodNotAllowed, context.channel.allocator.buffer(string: "only GET and HEAD are served\n"), extra: [("Allow", "GET, HEAD")])
        }
        guard head.uri.split(separator: "?", maxSplits: 1).first == "/metrics" else {
            return send(context, head, .notFound, context.channel.allocator.buffer(string: "xdpctl agent: metrics are at /metrics\n"))
        }
        scrapes.request(on: context.eventLoop).assumeIsolated().whenSuccess { rules in
            var body = context.channel.allocator.buffer(capacity: rules.count + 64 * 1024)
            body.writeBytes(self.registry.emitToBuffer())
            body.writeBytes(rules)
            self.send(context, head, .ok, body, type: "text/plain; version=0.0.4; charset=utf-8")
        }
    }

    private func send(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ status: HTTPResponseStatus, _ body: ByteBuffer,
                      type: String = "text/plain; charset=utf-8", extra: [(String, String)] = []) {
        var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", String(body.readableBytes))] + extra)
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !head.isKeepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
