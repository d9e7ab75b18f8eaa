import NIOConcurrencyHelpers
import NIOCore
import VoxCore

/// The I/O shell of `NudgePacing`: told of each commit that wrote something (on the store's
/// thread), it nudges through `send` and arms the owed nudge's timer on `loop`.
public final class NudgePacer: Sendable {
    private let pacing: NIOLockedValueBox<NudgePacing<ContinuousClock.Instant>>
    private let loop: EventLoop
    private let send: @Sendable () -> Void

    public init(interval: Duration, loop: EventLoop, send: @escaping @Sendable () -> Void) {
        self.pacing = NIOLockedValueBox(NudgePacing(interval: interval))
        self.loop = loop
        self.send = send
    }

    /// A commit that wrote something finished (any thread).
    public func committed() {
        carryOut(pacing.withLockedValue { $0.committed(at: .now) })
    }

    private func carryOut(_ action: NudgePacing<ContinuousClock.Instant>.Action) {
        switch action {
        case .none:
            break
        case .nudge:
            send()
        case .armTimer(let after):
            loop.scheduleTask(in: TimeAmount(after)) {
                self.carryOut(self.pacing.withLockedValue { $0.timerFired(at: .now) })
            }
        }
    }
}
