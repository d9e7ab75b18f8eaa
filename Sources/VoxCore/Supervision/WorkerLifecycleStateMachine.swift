/// The supervisor's decisions for one worker: when to start it, when it counts as up, when it
/// is hung, how long to wait before restarting it, when it is flapping.
///
/// A pure value: time comes in as the `now` of each event and randomness (for jitter) as an
/// argument, so tests drive it with made-up instants. The supervisor's I/O shell carries out
/// the returned actions (spawn a process, arm a timer, send a signal).
public struct WorkerLifecycleStateMachine<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration, Instant: Sendable {
    public enum State: Equatable, Sendable {
        /// Not started yet.
        case idle
        /// Process spawned, initialising (e.g. preloading the cache); not serving yet.
        case starting(since: Instant)
        /// Reported ready on the control channel.
        case ready(since: Instant)
        /// Dead; restart scheduled for `until`.
        case backoff(until: Instant)
        /// Asked to stop; waiting for the process to exit.
        case stopping
        /// Stopped for good (service shutdown).
        case stopped
    }

    public enum Action: Equatable, Sendable {
        case none
        /// Start a new process (then call `spawned` or `exited(.spawnFailed)`).
        case spawn
        /// Call `restartDue` after this delay.
        case scheduleRestart(after: Duration)
        /// Send a heartbeat with this sequence number.
        case sendHeartbeat(sequence: UInt64)
        /// Kill the process with SIGKILL; its exit arrives as `exited`.
        case kill(reason: String)
        /// Ask the process to stop gracefully (then SIGKILL after the shutdown timeout).
        case requestStop
    }

    public let policy: RestartPolicy
    public private(set) var state: State = .idle
    /// Restarts since the supervisor started.
    public private(set) var restarts = 0
    public private(set) var lastExitReason: ExitReason?
    private var consecutiveFailures = 0
    private var recentRestarts: [Instant] = []
    private var lastHeard: Instant?
    private var heartbeatSequence: UInt64 = 0
    private var killRequested = false
    /// The whole service is stopping: a crash from now on is not restarted.
    private var isServiceStopping = false

    public init(policy: RestartPolicy) {
        self.policy = policy
    }

    /// Whether the worker restarted `flapThreshold` times within the last `flapWindow`.
    public func isFlapping(now: Instant) -> Bool {
        recentRestarts.filter { $0.duration(to: now) < policy.flapWindow }.count >= policy.flapThreshold
    }

    /// A name for `voxsync status`.
    public func stateName(now: Instant) -> String {
        switch state {
        case .idle: "idle"
        case .starting: "starting"
        case .ready: "ready"
        case .backoff: isFlapping(now: now) ? "flapping" : "backoff"
        case .stopping: "stopping"
        case .stopped: "stopped"
        }
    }

    /// Seconds the current process has been ready, 0 when it is not.
    public func uptime(now: Instant) -> Duration {
        if case .ready(let since) = state { return since.duration(to: now) }
        return .zero
    }

    // MARK: Events

    /// The supervisor starts the worker for the first time.
    public mutating func start() -> Action {
        guard state == .idle else { return .none }
        return .spawn
    }

    /// The process for a `.spawn` exists now.
    public mutating func spawned(now: Instant) {
        state = .starting(since: now)
        lastHeard = now
        killRequested = false
    }

    /// The worker said it is ready.
    public mutating func becameReady(now: Instant) {
        guard case .starting = state else { return }
        state = .ready(since: now)
        lastHeard = now
    }

    /// The worker answered a heartbeat (or sent anything else on its control channel).
    public mutating func heard(now: Instant) {
        lastHeard = now
    }

    /// The periodic heartbeat tick: send the next heartbeat, or give up on a silent worker.
    public mutating func heartbeatTick(now: Instant) -> Action {
        switch state {
        case .starting, .ready:
            if let lastHeard, lastHeard.duration(to: now) > policy.heartbeatTimeout {
                guard !killRequested else { return .none }
                killRequested = true
                return .kill(reason: "no heartbeat answer for \(lastHeard.duration(to: now)) (limit \(policy.heartbeatTimeout))")
            }
            heartbeatSequence += 1
            return .sendHeartbeat(sequence: heartbeatSequence)
        case .idle, .backoff, .stopping, .stopped:
            return .none
        }
    }

    /// The process ended. `random` is a uniform draw in 0..<1 for the backoff jitter.
    public mutating func exited(_ reason: ExitReason, now: Instant, random: Double) -> Action {
        lastExitReason = reason
        switch state {
        case .stopping, .stopped:
            state = .stopped
            return .none
        case .idle, .backoff:
            return .none
        case .ready(let since) where since.duration(to: now) >= policy.stableAfter:
            consecutiveFailures = 0
        case .starting, .ready:
            break
        }
        if isServiceStopping {
            state = .stopped  // down for good; its turn in the ordered stop finds nothing to do
            return .none
        }
        restarts += 1
        recentRestarts = recentRestarts.filter { $0.duration(to: now) < policy.flapWindow } + [now]
        let delay = isFlapping(now: now)
            ? policy.backoff.maximum
            : policy.backoff.delay(attempt: consecutiveFailures, random: random)
        consecutiveFailures += 1
        state = .backoff(until: now.advanced(by: delay))
        return .scheduleRestart(after: delay)
    }

    /// The service as a whole has begun to stop (other workers first, this one later): if
    /// this worker dies meanwhile, it stays down instead of being restarted.
    public mutating func serviceStopping() {
        isServiceStopping = true
    }

    /// The restart timer fired.
    public mutating func restartDue(now: Instant) -> Action {
        guard !isServiceStopping, case .backoff(let until) = state, now >= until else { return .none }
        return .spawn
    }

    /// The service is shutting down.
    public mutating func stopRequested() -> Action {
        switch state {
        case .starting, .ready:
            state = .stopping
            return .requestStop
        case .idle, .backoff:
            state = .stopped
            return .none
        case .stopping, .stopped:
            return .none
        }
    }

    /// Whether the worker has nothing left running.
    public var isStopped: Bool { state == .stopped }
}
