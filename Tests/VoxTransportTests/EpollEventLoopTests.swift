import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing
import VoxTransport

/// The client socket's event loop as a SwiftNIO `EventLoop`: what the cache service relies on
/// (tasks from other threads run on it in order, promises made on it complete on it, timers
/// fire in deadline order and can be cancelled, nothing is left uncompleted at shutdown).
@Suite struct EpollEventLoopTests {
    @Test func tasksFromOtherThreadsRunOnTheLoopInOrder() async throws {
        let loop = try EpollEventLoop(name: "test-loop")
        #expect(!loop.inEventLoop)
        let seen = NIOLockedValueBox<[Int]>([])
        let onLoop = NIOLockedValueBox(true)
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<4 {
                group.addTask {
                    for index in 0..<250 {
                        loop.execute {
                            if !loop.inEventLoop { onLoop.withLockedValue { $0 = false } }
                            seen.withLockedValue { $0.append(thread * 1000 + index) }
                        }
                    }
                }
            }
        }
        try await loop.submit {}.get()  // runs after every task queued before it
        let order = seen.withLockedValue { $0 }
        #expect(order.count == 1000)
        #expect(onLoop.withLockedValue { $0 }, "every task ran on the loop's thread")
        for thread in 0..<4 {
            #expect(order.filter { $0 / 1000 == thread } == (0..<250).map { thread * 1000 + $0 }, "one thread's tasks keep their order")
        }
        try await loop.shutdownGracefully()
    }

    @Test func aPromiseCompletedFromAnotherThreadRunsItsCallbacksOnTheLoop() async throws {
        let loop = try EpollEventLoop(name: "test-loop")
        let promise = loop.makePromise(of: Int.self)
        let callback = promise.futureResult.map { value -> (Int, Bool) in (value * 2, loop.inEventLoop) }
        DispatchQueue.global().async { promise.succeed(21) }
        let (doubled, onLoop) = try await callback.get()
        #expect(doubled == 42)
        #expect(onLoop)
        try await loop.shutdownGracefully()
    }

    @Test func timersFireInDeadlineOrderAndACancelledOneNever() async throws {
        let loop = try EpollEventLoop(name: "test-loop")
        let fired = NIOLockedValueBox<[String]>([])
        let started = ContinuousClock.now
        let late = loop.scheduleTask(in: .milliseconds(60)) { fired.withLockedValue { $0.append("60 ms") } }
        let cancelled = loop.scheduleTask(in: .milliseconds(30)) { fired.withLockedValue { $0.append("cancelled") } }
        let early = loop.scheduleTask(in: .milliseconds(10)) { fired.withLockedValue { $0.append("10 ms") } }
        cancelled.cancel()
        try await early.futureResult.get()
        try await late.futureResult.get()
        #expect(ContinuousClock.now - started >= .milliseconds(60), "not before its deadline")
        await #expect(throws: EventLoopError.cancelled) { try await cancelled.futureResult.get() }
        #expect(fired.withLockedValue { $0 } == ["10 ms", "60 ms"])
        try await loop.shutdownGracefully()
    }

    @Test func shutdownFailsTheTimersStillWaiting() async throws {
        let loop = try EpollEventLoop(name: "test-loop")
        // Callbacks are attached before the shutdown: as on any SwiftNIO loop, a future's
        // callbacks run on its loop, so nothing can be observed once the loop has stopped.
        let outcomes = NIOLockedValueBox<[String]>([])
        loop.scheduleTask(in: .seconds(3600)) { "never" }.futureResult.whenComplete { result in
            outcomes.withLockedValue { $0.append("timer: \(result)") }
        }
        loop.submit { "ran" }.whenSuccess { value in outcomes.withLockedValue { $0.append("task: \(value)") } }
        try await loop.shutdownGracefully()
        #expect(outcomes.withLockedValue { $0 } == ["task: ran", "timer: failure(\(EventLoopError.shutdown))"])
        try await loop.shutdownGracefully()  // a second shutdown answers at once
    }

    /// Polls after work (so a client's next request finds it awake), fires its timers while
    /// polling, and sleeps once the window has passed: an idle loop costs no CPU. The window is
    /// long here (300 ms), and the loop does not give way to other threads (the test's own
    /// wake-ups would end its polling; that rule is `BusyPollPolicyTests`'). Polling is seen in
    /// the loop's count (under a loaded test run it gets little CPU, since it yields between
    /// polls); sleeping in its CPU time.
    @Test func aBusyPollingLoopPollsAfterWorkAndThenSleeps() async throws {
        let name = "poll-\(UInt16.random(in: 0...UInt16.max))"
        let loop = try EpollEventLoop(name: name, busyPoll: .milliseconds(300), busyPollContention: .seconds(10))
        defer { loop.shutdownGracefully { _ in } }
        try await loop.submit {}.get()  // the thread runs and has its name
        let thread = try #require(LoopThreadClock(named: name))
        let started = ContinuousClock.now
        let fired = loop.scheduleTask(in: .milliseconds(20)) { ContinuousClock.now - started }
        // Work: the window starts again. The count is read on the loop, as the work runs (the
        // test's task may resume late on a loaded machine).
        let pollsAtWork = try await loop.submit { loop.pollCount }.get()
        let firedAfter = try await fired.futureResult.get()
        #expect(firedAfter < .milliseconds(200), "a timer fires while the loop polls, not after the window (\(firedAfter))")
        try await Task.sleep(for: .milliseconds(700))
        let pollsAfterWindow = loop.pollCount
        #expect(pollsAfterWindow > pollsAtWork, "the loop polled after its work")
        let ticksAfterWindow = try thread.cpuTicks()
        try await Task.sleep(for: .milliseconds(600))
        #expect(loop.pollCount == pollsAfterWindow, "an idle loop does not poll once its window has passed")
        let idle = try thread.cpuTicks() - ticksAfterWindow
        #expect(idle <= 5, "an idle loop sleeps once its window has passed (\(idle) ticks of CPU in 600 ms)")
    }
}

/// The CPU time of one thread of this process, found by its name (`/proc/self/task`).
private struct LoopThreadClock {
    let statPath: String

    init?(named name: String) {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        for task in tasks {
            let comm = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
            if comm.trimmingCharacters(in: .whitespacesAndNewlines) == name {
                statPath = "/proc/self/task/\(task)/stat"
                return
            }
        }
        return nil
    }

    /// User plus system time, in clock ticks (fields 14 and 15 of `stat`, after the name).
    func cpuTicks() throws -> Int {
        let stat = try String(contentsOfFile: statPath, encoding: .utf8)
        let fields = stat[stat.index(after: try #require(stat.lastIndex(of: ")")))...].split(separator: " ")
        // fields[0] is field 3 (state), so utime (14) and stime (15) are fields[11] and [12].
        return try #require(Int(fields[11])) + #require(Int(fields[12]))
    }
}
