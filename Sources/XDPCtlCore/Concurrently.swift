import Foundation

/// A value computed on another thread; `value` waits for it.
public final class Concurrently<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: T?

    public init(_ work: @escaping @Sendable () -> T) {
        Thread.detachNewThread { [self] in
            result = work()
            done.signal()
        }
    }

    public var value: T {
        done.wait()
        done.signal() // later readers do not wait
        return result!
    }
}
