import Foundation
import Logging
import NIOCore
import NIOPosix
import VoxCore
import VoxTransport
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// The supervisor's I/O shell: it spawns the workers, carries out what each worker's
/// `WorkerLifecycleStateMachine` decides, relays heartbeats, and stops everything in order.
///
/// `@unchecked Sendable`: every mutable member is read and written only on `loop`. Each entry
/// point from another thread (the reaper, the status server, the caller of `start`/`stop`)
/// hops onto `loop` first, and the private methods assert it.
public final class Supervisor: @unchecked Sendable {
    private struct Worker {
        var machine: WorkerLifecycleStateMachine<ContinuousClock.Instant>
        var pid: pid_t = 0
        var control: Channel?
        var restartTimer: Scheduled<Void>?
        var killTimer: Scheduled<Void>?
        var detail = ""
        var readyOnce = false
        var stopped: EventLoopPromise<Void>?
    }

    public let configuration: VoxsyncConfiguration
    public let loop: EventLoop
    private let spawner: ProcessSpawner
    public let logger: Logger
    private let listenDescriptor: CInt
    private let serializedConfiguration: Data
    private let startedAt = ContinuousClock.now
    private var workers: [ServiceRole: Worker] = [:]
    private var heartbeat: RepeatedTask?
    private var allReady: EventLoopPromise<Void>?
    private var stopping = false

    public init(configuration: VoxsyncConfiguration, listenDescriptor: CInt, loop: EventLoop, spawner: ProcessSpawner = .init(), logger: Logger) {
        self.configuration = configuration
        self.listenDescriptor = listenDescriptor
        self.loop = loop
        self.spawner = spawner
        self.logger = logger
        self.serializedConfiguration = ConfigurationLoader.serialized(configuration)
        for role in ServiceRole.startOrder {
            workers[role] = Worker(machine: .init(policy: configuration.restart))
        }
    }

    // MARK: Public entry points

    /// Starts every worker; the future completes when each has reported ready once (restarts
    /// included), which is when the start-up summary can be printed.
    public func start() -> EventLoopFuture<Void> {
        loop.flatSubmit {
            let ready = self.loop.makePromise(of: Void.self)
            self.allReady = ready
            for role in ServiceRole.startOrder {
                let action = self.workers[role]!.machine.start()
                self.run(action, for: role)
            }
            let interval = TimeAmount.nanoseconds(Int64(self.configuration.restart.heartbeatInterval.seconds * 1e9))
            self.heartbeat = self.loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in self.heartbeatTick() }
            return ready.futureResult
        }
    }

    /// A process ended (called by the reaper, from its thread).
    public func childExited(pid: pid_t, reason: ExitReason) {
        loop.execute { self.handleExit(pid: pid, reason: reason) }
    }

    /// Stops the workers in reverse start order, each within the shutdown timeout.
    public func stop() -> EventLoopFuture<Void> {
        loop.flatSubmit {
            self.stopping = true
            self.heartbeat?.cancel()
            for role in ServiceRole.startOrder { self.workers[role]!.machine.serviceStopping() }
            var chain = self.loop.makeSucceededVoidFuture()
            for role in ServiceRole.startOrder.reversed() {
                chain = chain.flatMap { self.stop(role) }
            }
            return chain
        }
    }

    /// What `voxsync status` shows.
    public func status() -> EventLoopFuture<StatusResponse> {
        loop.submit {
            let now = ContinuousClock.now
            var response = StatusResponse()
            response.supervisorPid = getpid()
            response.supervisorUptimeSeconds = self.startedAt.duration(to: now).seconds
            response.dataDirectory = self.configuration.dataDirectory
            response.workers = ServiceRole.startOrder.map { role in
                let worker = self.workers[role]!
                var status = WorkerStatus()
                status.role = WorkerRole(role)
                status.pid = worker.machine.state == .stopped || self.isDown(worker) ? 0 : worker.pid
                status.state = worker.machine.stateName(now: now)
                status.uptimeSeconds = worker.machine.uptime(now: now).seconds
                status.restarts = UInt32(worker.machine.restarts)
                status.lastExitReason = worker.machine.lastExitReason?.description ?? ""
                return status
            }
            return response
        }
    }

    /// One line per worker for the start-up summary.
    public func readyDetails() -> EventLoopFuture<[(ServiceRole, pid_t, String)]> {
        loop.submit {
            ServiceRole.startOrder.map { ($0, self.workers[$0]!.pid, self.workers[$0]!.detail) }
        }
    }

    // MARK: Carrying out decisions

    private func run(_ action: WorkerLifecycleStateMachine<ContinuousClock.Instant>.Action, for role: ServiceRole) {
        loop.preconditionInEventLoop()
        switch action {
        case .none:
            break
        case .spawn:
            spawn(role)
        case .scheduleRestart(let delay):
            let nanos = Int64(delay.seconds * 1e9)
            workers[role]!.restartTimer = loop.scheduleTask(in: .nanoseconds(nanos)) {
                let next = self.workers[role]!.machine.restartDue(now: .now)
                self.run(next, for: role)
            }
            if workers[role]!.machine.isFlapping(now: .now) {
                logger.error("worker is flapping; retrying at the backoff cap", metadata: [
                    "worker": "\(role.rawValue)", "restarts": "\(workers[role]!.machine.restarts)",
                    "last_exit": "\(workers[role]!.machine.lastExitReason?.description ?? "")",
                ])
            }
        case .sendHeartbeat(let sequence):
            var heartbeat = Voxsync_V1_Heartbeat()
            heartbeat.sequence = sequence
            workers[role]!.control?.writeAndFlush(Envelope(requestID: sequence, .heartbeat(heartbeat)), promise: nil)
        case .kill(let reason):
            let pid = workers[role]!.pid
            guard pid > 0 else { return }
            logger.warning("killing an unresponsive worker", metadata: ["worker": "\(role.rawValue)", "pid": "\(pid)", "reason": "\(reason)"])
            kill(pid, SIGKILL)
        case .requestStop:
            let pid = workers[role]!.pid
            if let control = workers[role]!.control {
                var shutdown = Voxsync_V1_ShutdownRequest()
                shutdown.deadlineMs = UInt32(configuration.shutdownTimeout.seconds * 1000)
                control.writeAndFlush(Envelope(requestID: 1, .shutdown(shutdown)), promise: nil)
            } else {
                // The control channel is not connected yet: the worker's ServiceGroup stops
                // gracefully on SIGTERM too.
                kill(pid, SIGTERM)
            }
            let nanos = Int64(configuration.shutdownTimeout.seconds * 1e9)
            workers[role]!.killTimer = loop.scheduleTask(in: .nanoseconds(nanos)) {
                guard self.workers[role]!.pid == pid else { return }  // already gone (and maybe reused)
                self.logger.warning("worker did not stop in time; killing it", metadata: ["worker": "\(role.rawValue)", "pid": "\(pid)"])
                kill(pid, SIGKILL)
            }
        }
    }

    private func spawn(_ role: ServiceRole) {
        var pair: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            handleSpawnFailure(role, "socketpair: \(String(cString: strerror(errno)))")
            return
        }
        let pid: pid_t
        do {
            pid = try spawner.spawn(
                role: role, configuration: serializedConfiguration, controlDescriptor: pair[1],
                listenDescriptor: role == .cache ? listenDescriptor : nil)
        } catch {
            close(pair[0])
            close(pair[1])
            handleSpawnFailure(role, "\(error)")
            return
        }
        close(pair[1])
        workers[role]!.pid = pid
        workers[role]!.machine.spawned(now: .now)
        logger.debug("worker started", metadata: ["worker": "\(role.rawValue)", "pid": "\(pid)"])

        let controlEnd = pair[0]
        ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PeerChannelHandler(
                        onEnvelope: { self.controlMessage($0, from: role, pid: pid) },
                        onClose: { _ in }))
                }
            }
            .withConnectedSocket(controlEnd)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    if self.workers[role]!.pid == pid {
                        self.workers[role]!.control = channel
                    } else {
                        channel.close(promise: nil)
                    }
                case .failure(let error):
                    self.logger.error("cannot open the control channel", metadata: ["worker": "\(role.rawValue)", "error": "\(error)"])
                    kill(pid, SIGKILL)
                }
            }
    }

    private func handleSpawnFailure(_ role: ServiceRole, _ why: String) {
        logger.error("cannot start worker", metadata: ["worker": "\(role.rawValue)", "error": "\(why)"])
        workers[role]!.machine.spawned(now: .now)
        let action = workers[role]!.machine.exited(.spawnFailed(why), now: .now, random: .random(in: 0..<1))
        run(action, for: role)
    }

    private func controlMessage(_ envelope: Envelope, from role: ServiceRole, pid: pid_t) {
        loop.preconditionInEventLoop()
        guard workers[role]!.pid == pid else { return }  // a message from a previous process
        let now = ContinuousClock.now
        workers[role]!.machine.heard(now: now)
        if case .workerReady(let ready)? = envelope.message {
            workers[role]!.machine.becameReady(now: now)
            workers[role]!.detail = ready.detail
            if !workers[role]!.readyOnce {
                workers[role]!.readyOnce = true
                logger.debug("worker ready", metadata: ["worker": "\(role.rawValue)", "pid": "\(pid)", "detail": "\(ready.detail)"])
            } else {
                logger.info("worker restarted and ready", metadata: ["worker": "\(role.rawValue)", "pid": "\(pid)"])
            }
            if workers.values.allSatisfy(\.readyOnce) {
                allReady?.succeed()
                allReady = nil
            }
        }
    }

    private func handleExit(pid: pid_t, reason: ExitReason) {
        guard pid > 0, let role = workers.first(where: { $0.value.pid == pid })?.key else { return }
        // The pid is free for reuse from here on: forget it before anything can signal it.
        workers[role]!.pid = 0
        workers[role]!.control?.close(promise: nil)
        workers[role]!.control = nil
        workers[role]!.killTimer?.cancel()
        let wasStopping = workers[role]!.machine.state == .stopping
        let action = workers[role]!.machine.exited(reason, now: .now, random: .random(in: 0..<1))
        if wasStopping || stopping {
            logger.info("worker stopped", metadata: ["worker": "\(role.rawValue)", "pid": "\(pid)", "reason": "\(reason)"])
        } else {
            logger.warning("worker died; restarting", metadata: [
                "worker": "\(role.rawValue)", "pid": "\(pid)", "reason": "\(reason)", "restarts": "\(workers[role]!.machine.restarts)",
            ])
        }
        if workers[role]!.machine.isStopped {
            workers[role]!.stopped?.succeed()
            workers[role]!.stopped = nil
        }
        run(action, for: role)
    }

    private func heartbeatTick() {
        let now = ContinuousClock.now
        for role in ServiceRole.startOrder {
            let action = workers[role]!.machine.heartbeatTick(now: now)
            run(action, for: role)
        }
    }

    private func stop(_ role: ServiceRole) -> EventLoopFuture<Void> {
        workers[role]!.restartTimer?.cancel()
        let action = workers[role]!.machine.stopRequested()
        if workers[role]!.machine.isStopped { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        workers[role]!.stopped = promise
        run(action, for: role)
        return promise.futureResult
    }

    private func isDown(_ worker: Worker) -> Bool {
        switch worker.machine.state {
        case .backoff, .idle, .stopped: true
        default: false
        }
    }
}
