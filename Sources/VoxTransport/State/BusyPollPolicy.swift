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
/// (200 µs by default) or `SO_BUSY_POLL`, done for the threads that answer the clients.
///
/// Polling only pays on a CPU nobody else wants. When a yield between two polls comes back
/// late (`contention` or more), another thread ran on this CPU meanwhile — on a small machine
/// usually a client, whose requests are what the loop waits for — and the loop stops polling
/// until its next work. So under load from many clients the loops sleep between bursts as
/// they would without polling, and the CPU goes to whoever needs it. Nor does a loop poll
/// after a pass that found more than `crowd` descriptors ready at once: it serves many
/// clients, the next request comes soon anyway, and polling there only competed with them
/// (verify p99 at 50 clients 563–2 917 µs with this rule against 741–4 240 µs without it, in
/// five alternated pairs; throughput the same).
///
/// The cost is bounded: at most `window` of CPU per burst of work, nothing while the service
/// is idle (a loop polls only after work, and a timer firing is not work). A due timer never
/// waits for the window: it is run at once (a wait with a zero timeout), and the polling goes
/// on after it while the window lasts. `window` zero: sleep at once.
///
/// Pure: the loop tells it what happened, with the clock, and acts on its answer.
struct BusyPollPolicy: Sendable {
    /// How long a loop polls after its last work (events or tasks) before it sleeps.
    let window: TimeAmount
    /// A yield that takes this long means another thread wanted the CPU.
    let contention: TimeAmount
    /// More descriptors than this ready in one pass: a crowd, no polling after it.
    let crowd: Int
    private var lastWork: NIODeadline
    private var gaveWay = false

    init(window: TimeAmount, contention: TimeAmount = .microseconds(20), crowd: Int = 3, start: NIODeadline) {
        precondition(window >= .zero, "a busy-poll window cannot be negative")
        self.window = window
        self.contention = contention
        self.crowd = crowd
        self.lastWork = start
    }

    /// What the loop's next `epoll_wait` does.
    enum Wait: Equatable {
        /// Busy polling: check for events without sleeping (timeout 0), then yield.
        case poll
        /// Wait for an event, at most this many milliseconds (-1: no limit; 0: a timer is due,
        /// only collect what is ready).
        case sleep(timeoutMilliseconds: Int32)
    }

    /// The loop finished handling `events` ready descriptors (tasks included) at `now`: a new
    /// window starts, unless they were a crowd.
    mutating func workArrived(at now: NIODeadline, events: Int) {
        lastWork = now
        gaveWay = events > crowd
    }

    /// A poll found nothing and the loop yielded its CPU; the yield took `took`.
    mutating func yielded(took: TimeAmount) {
        if took >= contention { gaveWay = true }
    }

    /// `firstTimer`: the deadline of the loop's earliest timer, if any.
    func nextWait(now: NIODeadline, firstTimer: NIODeadline?) -> Wait {
        if let firstTimer, firstTimer <= now { return .sleep(timeoutMilliseconds: 0) }
        if !gaveWay && now - lastWork < window { return .poll }
        guard let firstTimer else { return .sleep(timeoutMilliseconds: -1) }
        // Rounded up: a timer must not be woken for early and then found not yet due.
        let nanoseconds = (firstTimer - now).nanoseconds
        return .sleep(timeoutMilliseconds: Int32(clamping: (nanoseconds + 999_999) / 1_000_000))
    }
}
