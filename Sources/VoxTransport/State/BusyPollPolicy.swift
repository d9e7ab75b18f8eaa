import NIOCore

/// Whether an `EpollEventLoop` with nothing to do polls for a while or sleeps.
///
/// A loop that sleeps in `epoll_wait` must be woken for the next request; on a virtual machine
/// whose idle vCPUs halt (this project's 2-vCPU benchmark VM: cpuidle `haltpoll` with
/// `guest_halt_poll_ns` = 0), that wake-up is a VM exit and an interrupt into a halted vCPU —
/// the larger part of a 1-client verify round trip, and most of its tail. So a loop that has
/// just had work polls (`epoll_wait` with a zero timeout, yielding the CPU between polls) for
/// `window` after it, and only then sleeps: a client that sends its next request within the
/// window finds the loop awake. It is the same trade Linux makes with `guest_halt_poll_ns`
/// (200 µs by default) or `SO_BUSY_POLL`, done for the one thread that answers the client.
///
/// The cost is bounded: at most `window` of CPU per burst of work, nothing while the service
/// is idle (a loop polls only after work, and a timer firing is not work). A due timer ends the
/// polling, and a timer never waits for the window. `window` zero: sleep at once.
///
/// Pure: the loop asks it with the clock and acts on the answer.
struct BusyPollPolicy: Sendable, Equatable {
    /// How long a loop polls after its last work (events or tasks) before it sleeps.
    let window: TimeAmount

    init(window: TimeAmount) {
        precondition(window >= .zero, "a busy-poll window cannot be negative")
        self.window = window
    }

    /// What the loop's next `epoll_wait` does.
    enum Wait: Equatable {
        /// Check for events without sleeping (timeout 0).
        case poll
        /// Sleep until an event, at most this many milliseconds (-1: no limit).
        case sleep(timeoutMilliseconds: Int32)
    }

    /// `lastActive`: when the loop last had events or tasks. `firstTimer`: the deadline of
    /// its earliest timer, if any.
    func nextWait(now: NIODeadline, lastActive: NIODeadline, firstTimer: NIODeadline?) -> Wait {
        if let firstTimer, firstTimer <= now { return .poll }
        if now - lastActive < window { return .poll }
        guard let firstTimer else { return .sleep(timeoutMilliseconds: -1) }
        // Rounded up: a timer must not be woken for early and then found not yet due.
        let nanoseconds = (firstTimer - now).nanoseconds
        return .sleep(timeoutMilliseconds: Int32(clamping: (nanoseconds + 999_999) / 1_000_000))
    }
}
