import CoreMetrics
import CVoxSys
import Foundation
import Logging
import NIOCore
import NIOPosix
import VoxCore
import VoxStore
import VoxTransport
import VoxWire

/// Writes: each waits for its group commit (`GroupCommitQueue` decides, this carries it out)
/// and is answered only after its transaction — profile row and outbox row — committed.
extension CacheService {
    /// A write waiting for its group commit.
    struct PendingPut {
        var record: ProfileRecord
        var expectedVersion: UInt64?
        var promise: EventLoopPromise<Envelope.OneOf_Message>
        var arrived = NIODeadline.now()
    }

    func put(_ request: Voxsync_V1_PutRequest) -> ServerResponse {
        let record = ProfileRecord(
            speakerID: request.profile.speakerID, embedding: request.profile.embedding.values,
            samples: request.profile.samples.map(\.values), threshold: request.profile.threshold,
            metadata: request.profile.metadata)
        let pending = PendingPut(
            record: record, expectedVersion: request.hasExpectedVersion ? request.expectedVersion : nil,
            promise: loop.makePromise())
        run(locked { commits.enqueue(pending) })
        return .later(pending.promise.futureResult)
    }

    /// Commits `batch` in one transaction on the store thread, answers each write (only now:
    /// after the commit), and starts the writes that queued up meanwhile.
    private func commit(_ batch: [PendingPut]) {
        let writes = batch.map { (profile: $0.record, expectedVersion: $0.expectedVersion) }
        let now = Self.nowMilliseconds()
        onStore { store in try store.putBatch(writes, now: now) }.whenComplete { outcome in
            // The state first, under the lock; the answers after it is released (a completed
            // promise may run the connection's next request, which takes the lock).
            let answers: [Envelope.OneOf_Message]
            switch outcome {
            case .success(let results):
                answers = self.locked {
                    zip(batch, results).map { _, result in
                        switch result {
                        case .success(let stored):
                            self.touch(stored.speakerID)
                            self.admit(stored)
                            var answer = Voxsync_V1_PutResponse()
                            answer.version = stored.version
                            answer.origin = stored.origin
                            return .putOk(answer)
                        case .failure(let error):
                            return Self.answer(for: error)
                        }
                    }
                }
            case .failure(let error):
                answers = Array(repeating: Self.answer(for: error), count: batch.count)
            }
            for (pending, answer) in zip(batch, answers) {
                pending.promise.succeed(answer)
                if case .putOk = answer {
                    self.metrics.write.recordNanoseconds((NIODeadline.now() - pending.arrived).nanoseconds)
                }
            }
            self.onCommitted?()
            self.run(self.locked { self.commits.batchFinished() })
        }
    }

    /// Carries out a group-commit decision.
    private func run(_ action: GroupCommitQueue<PendingPut>.Action) {
        switch action {
        case .none:
            break
        case .startBatch(let batch):
            commit(batch)
        case .armHoldTimer(let id):
            loop.scheduleTask(in: commitHold) { self.run(self.locked { self.commits.holdTimedOut(id: id) }) }
        }
    }
}
