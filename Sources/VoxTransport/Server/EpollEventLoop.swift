import CVoxSys
import Dispatch
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Something registered with an `EpollEventLoop` for the readiness of one descriptor.
protocol EpollReadinessHandler: AnyObject {
    /// Called on the loop with the ready epoll events (`EPOLLIN`, `EPOLLOUT`, `EPOLLHUP`,
    /// `EPOLLERR`).
    func ready(_ events: UInt32)
}

/// One thread around one level-triggered epoll instance: the event loop of the client
/// socket's connections (`EpollSocketServer`).
///
/// It is a SwiftNIO `EventLoop` — tasks, timers, promises and futures made on it complete on
/// its thread — so a service answers on it exactly as on a NIO loop: a write's promise made
/// on the connection's loop is completed there by one `execute` from the store's thread, and
/// the answer is written by the same task. What it leaves out is SwiftNIO's channel
/// machinery (pipelines, `NIOAny`, pending-write queues, promises per read and write): a
/// connection is a descriptor, a few buffers and `ServerConnectionStateMachine`.
///
/// Registration of descriptors happens only on the loop's thread; `execute` and
/// `scheduleTask` may be called from any thread (an `eventfd` wakes the loop). After
/// `shutdownGracefully` the tasks already queued run and the waiting timers fail with
/// `EventLoopError.shutdown`; what is submitted later is dropped, as on a SwiftNIO loop that
/// was shut down — so a loop must outlive every promise made on it (the cache worker never
/// stops its client loops; the process exits).
public final class EpollEventLoop: EventLoop, @unchecked Sendable {
    private let epoll: CInt
    private let wakeup: CInt
    private let name: String
    private let busyPoll: TimeAmount
    private let busyPollContention: TimeAmount
    private let polls = Atomic<Int>(0)
    private let pending = NIOLockedValueBox(Pending())
    /// Which loop, if any, the calling thread runs: set by each loop's thread for itself, so
    /// `inEventLoop` is one thread-local read, and false on every other thread — also on one
    /// that reuses a stopped loop's `pthread_t`.
    private static let runningLoop: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    // Touched only on the loop's thread.
    private var handlers: [UInt64: EpollReadinessHandler] = [:]
    private var nextToken: UInt64 = 1
    private var timers = TimerQueue()
    /// When the current iteration's `epoll_wait` returned: the clock connections stamp their
    /// activity with, read once per wake-up instead of once per frame.
    private(set) var iterationStart = NIODeadline.now()

    private struct Pending {
        var tasks: [@Sendable () -> Void] = []
        /// The previous batch's array, emptied, handed back for the next one (no allocation
        /// per wake-up).
        var spare: [@Sendable () -> Void] = []
        var stopping = false
        var stopped = false
        var shutdownCallbacks: [(DispatchQueue, @Sendable (Error?) -> Void)] = []
        var nextTimerID: UInt64 = 0
    }

    /// Starts the loop's thread, named `name` (at most 15 bytes are kept; shown by `top -H`).
    /// After work the loop polls for `busyPoll` before it sleeps, unless a yield between two
    /// polls takes `busyPollContention` or more (another thread wanted the CPU; see
    /// `BusyPollPolicy`). `busyPoll` zero: it sleeps at once.
    public init(name: String, busyPoll: TimeAmount = .zero, busyPollContention: TimeAmount = .microseconds(20)) throws(TransportError) {
        guard busyPoll >= .zero, busyPollContention >= .zero else {
            throw TransportError(.io, "an event loop's busy-poll window and contention time cannot be negative (got \(busyPoll), \(busyPollContention))")
        }
        self.name = name
        self.busyPoll = busyPoll
        self.busyPollContention = busyPollContention
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw TransportError(.io, "epoll_create1 failed: \(String(cString: strerror(errno)))") }
        wakeup = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeup >= 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(epoll)
            throw TransportError(.io, "eventfd failed: \(reason)")
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = 0  // token 0: the wake-up descriptor
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, wakeup, &event) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(epoll)
            Glibc.close(wakeup)
            throw TransportError(.io, "epoll_ctl failed for the wake-up descriptor: \(reason)")
        }
        let thread = Thread { [self] in
            pthread_setspecific(Self.runningLoop, Unmanaged.passUnretained(self).toOpaque())
            _ = voxsync_name_this_thread(name)
            self.run()
            pthread_setspecific(Self.runningLoop, nil)
        }
        thread.start()
    }

    /// How many times the loop has busy-polled for events instead of sleeping (`busyPoll`),
    /// for tests and diagnostics.
    public var pollCount: Int { polls.load(ordering: .relaxed) }

    /// The descriptors close with the loop object, not when its thread stops: a thread that
    /// queued a task just before the stop may still be writing to the wake-up descriptor, and
    /// a closed number can be reused at once. The thread holds `self` until it returns.
    deinit {
        Glibc.close(epoll)
        Glibc.close(wakeup)
    }

    // MARK: EventLoop

    public var inEventLoop: Bool {
        pthread_getspecific(Self.runningLoop) == Unmanaged.passUnretained(self).toOpaque()
    }

    public func execute(_ task: @escaping @Sendable () -> Void) {
        let wake: Bool = pending.withLockedValue { pending in
            guard !pending.stopped else { return false }
            pending.tasks.append(task)
            return pending.tasks.count == 1
        }
        if wake { wakeUp() }
    }

    public func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        let promise: EventLoopPromise<T> = makePromise()
        let id = pending.withLockedValue { pending -> UInt64 in
            pending.nextTimerID += 1
            return pending.nextTimerID
        }
        let timer = Timer(
            id: id, deadline: deadline,
            fire: {
                do { promise.assumeIsolatedUnsafeUnchecked().succeed(try task()) } catch { promise.fail(error) }
            },
            fail: { promise.fail($0) })
        if inEventLoop {
            timers.insert(timer)
        } else {
            execute { self.timers.insert(timer) }
        }
        return Scheduled(promise: promise) {
            // On the loop at once, so a timer due in this iteration does not fire after all.
            if self.inEventLoop {
                self.cancelTimer(id: id)
            } else {
                self.execute { self.cancelTimer(id: id) }
            }
        }
    }

    private func cancelTimer(id: UInt64) {
        if let cancelled = timers.remove(id: id) { cancelled.fail(EventLoopError.cancelled) }
    }

    public func scheduleTask<T>(in delay: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        scheduleTask(deadline: .now() + delay, task)
    }

    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable (Error?) -> Void) {
        let alreadyStopped: Bool = pending.withLockedValue { pending in
            if pending.stopped { return true }
            pending.stopping = true
            pending.shutdownCallbacks.append((queue, callback))
            return false
        }
        if alreadyStopped {
            queue.async { callback(nil) }
        } else {
            wakeUp()
        }
    }

    public var description: String { "EpollEventLoop(\(name))" }

    // MARK: Descriptors (on the loop's thread)

    /// Adds `descriptor` for `events`; returns the token that names it to the other calls.
    func register(_ descriptor: CInt, events: UInt32, handler: EpollReadinessHandler) throws(TransportError) -> UInt64 {
        assert(inEventLoop)
        let token = nextToken
        nextToken += 1
        var event = epoll_event()
        event.events = events
        event.data.u64 = token
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, descriptor, &event) == 0 else {
            throw TransportError(.io, "epoll_ctl(ADD) failed: \(String(cString: strerror(errno)))")
        }
        handlers[token] = handler
        return token
    }

    /// Changes the events `descriptor` is watched for.
    func modify(_ descriptor: CInt, token: UInt64, events: UInt32) {
        assert(inEventLoop)
        var event = epoll_event()
        event.events = events
        event.data.u64 = token
        _ = epoll_ctl(epoll, EPOLL_CTL_MOD, descriptor, &event)
    }

    /// Stops watching `descriptor`; an event already returned for it is not delivered (events
    /// carry the token, and a closed descriptor's number may be reused at once).
    func deregister(_ descriptor: CInt, token: UInt64) {
        assert(inEventLoop)
        handlers[token] = nil
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, descriptor, nil)
    }

    // MARK: The loop

    private func wakeUp() {
        var one: UInt64 = 1
        _ = write(wakeup, &one, 8)
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var waiting = BusyPollPolicy(window: busyPoll, contention: busyPollContention, start: .now())
        while true {
            let wait = waiting.nextWait(now: .now(), firstTimer: timers.firstDeadline)
            let timeout: Int32
            switch wait {
            case .poll:
                timeout = 0
                polls.add(1, ordering: .relaxed)
            case .sleep(let milliseconds): timeout = milliseconds
            }
            let count = events.withUnsafeMutableBufferPointer {
                epoll_wait(epoll, $0.baseAddress, Int32($0.count), timeout)
            }
            iterationStart = .now()
            if count > 0 {
                for index in 0..<Int(count) {
                    let token = events[index].data.u64
                    if token == 0 {
                        var value: UInt64 = 0
                        _ = read(wakeup, &value, 8)
                    } else if let handler = handlers[token] {
                        handler.ready(events[index].events)
                    }
                }
            } else if wait == .poll {
                // Polling and nothing came: let whatever else wants this vCPU run first (on two
                // cores that is often the client, or the store's thread).
                sched_yield()
                waiting.yielded(took: .now() - iterationStart)
            }
            for timer in timers.popDue(now: iterationStart) { timer.fire() }
            if runTasks() { break }
            // The window runs from the end of the work, so a long pass still polls after it.
            if count > 0 { waiting.workArrived(at: .now(), events: Int(count)) }
        }
        finish()
    }

    /// Runs the tasks queued so far (not those they queue: those wake the loop again).
    /// Returns whether the loop should stop.
    private func runTasks() -> Bool {
        var (tasks, stopping) = pending.withLockedValue { pending in
            let tasks = pending.tasks
            pending.tasks = pending.spare
            pending.spare = []
            return (tasks, pending.stopping)
        }
        for task in tasks { task() }
        tasks.removeAll(keepingCapacity: true)
        return pending.withLockedValue { pending in
            if pending.spare.isEmpty { pending.spare = tasks }
            return stopping && pending.tasks.isEmpty
        }
    }

    /// The last tasks run, then every timer still waiting fails with `EventLoopError.shutdown`
    /// (so no promise is left uncompleted); tasks and timers submitted later fail or are dropped.
    private func finish() {
        let (tasks, callbacks) = pending.withLockedValue { pending in
            pending.stopped = true
            defer { pending.tasks = []; pending.shutdownCallbacks = [] }
            return (pending.tasks, pending.shutdownCallbacks)
        }
        for task in tasks { task() }
        // A failed timer's callback may schedule another: fail those too.
        while true {
            let waiting = timers.removeAll()
            if waiting.isEmpty { break }
            for timer in waiting { timer.fail(EventLoopError.shutdown) }
        }
        handlers = [:]
        for (queue, callback) in callbacks { queue.async { callback(nil) } }
    }
}

/// The loop's timers in deadline order (few: an idle check per server and a service's
/// occasional delay).
private struct TimerQueue {
    private var timers: [Timer] = []

    mutating func insert(_ timer: Timer) {
        var low = 0
        var high = timers.count
        while low < high {
            let middle = (low + high) / 2
            if timers[middle].deadline <= timer.deadline { low = middle + 1 } else { high = middle }
        }
        timers.insert(timer, at: low)
    }

    mutating func remove(id: UInt64) -> Timer? {
        guard let index = timers.firstIndex(where: { $0.id == id }) else { return nil }
        return timers.remove(at: index)
    }

    var firstDeadline: NIODeadline? { timers.first?.deadline }

    mutating func popDue(now: NIODeadline) -> [Timer] {
        guard let first = timers.first, first.deadline <= now else { return [] }
        let due = timers.prefix { $0.deadline <= now }
        timers.removeFirst(due.count)
        return Array(due)
    }

    mutating func removeAll() -> [Timer] {
        defer { timers = [] }
        return timers
    }
}

/// Made on any thread, then only moved to and run on the loop's thread.
private struct Timer: @unchecked Sendable {
    let id: UInt64
    let deadline: NIODeadline
    let fire: () -> Void
    let fail: (Error) -> Void
}
