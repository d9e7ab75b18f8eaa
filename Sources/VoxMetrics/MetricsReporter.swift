import CoreMetrics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import VoxWire
import VoxTransport
import VoxCore

/// Sends this process's cumulative figures to the metrics worker (`metrics.sock`) once a
/// second. Never blocks: a snapshot that cannot go out is replaced by the next one, which holds
/// everything the lost one did.
public final class MetricsReporter: Sendable {
    public let registry: MetricsRegistry
    private let role: WorkerRole
    private let sender: PeerSender
    private let beforeSnapshot: @Sendable () -> Void
    private let task: NIOLockedValueBoxHolder<RepeatedTask>

    /// `beforeSnapshot` runs on the sender's loop just before each snapshot, to set figures
    /// that are read rather than counted (queue size, worker states).
    public init(registry: MetricsRegistry, role: WorkerRole, metricsSocket: String, loop: EventLoop, logger: Logger,
                beforeSnapshot: @escaping @Sendable () -> Void = {}) {
        self.registry = registry
        self.role = role
        self.sender = PeerSender(path: metricsSocket, clientName: "voxsyncd \(role)", capacity: 1, loop: loop, logger: logger)
        self.beforeSnapshot = beforeSnapshot
        self.task = NIOLockedValueBoxHolder()
    }

    public func start(interval: TimeAmount = .seconds(1)) {
        let pid = getpid()
        task.value = sender.loop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: interval) { _ in
            self.beforeSnapshot()
            let now = WallClock.nowMilliseconds()
            self.sender.send(.metricsSnapshot(self.registry.snapshot(role: self.role, pid: pid, takenAt: now)), policy: .replace)
        }
    }

    public func stop() {
        task.value?.cancel()
        sender.close()
    }
}

/// A value set once and read later, behind a lock.
public final class NIOLockedValueBoxHolder<Value: Sendable>: Sendable {
    private let box = NIOLockedValueBox<Value?>(nil)
    public init() {}
    public var value: Value? {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
}


extension MetricsRegistry {
    /// Sets a counter to an absolute value counted elsewhere (the supervisor's restart counts,
    /// the sync engine's totals).
    public func setCounter(_ name: String, _ labels: [(String, String)] = [], to value: Double) {
        scalar(.init(name, labels), counter: true).value.withLockedValue { $0 = value }
    }

    /// Sets a gauge.
    public func setGauge(_ name: String, _ labels: [(String, String)] = [], to value: Double) {
        scalar(.init(name, labels), counter: false).value.withLockedValue { $0 = value }
    }
}

extension MetricsRegistry {
    /// Adds `amount` to a counter.
    public func increment(_ name: String, _ labels: [(String, String)] = [], by amount: Double = 1) {
        scalar(.init(name, labels), counter: true).value.withLockedValue { $0 += amount }
    }
}
