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
        run(commits.enqueue(pending))
        return .later(pending.promise.futureResult)
    }

    /// Commits `batch` in one transaction on the store thread, answers each write (only now:
    /// after the commit), and starts the writes that queued up meanwhile.
    private func commit(_ batch: [PendingPut]) {
        let writes = batch.map { (profile: $0.record, expectedVersion: $0.expectedVersion) }
        let now = Self.nowMilliseconds()
        onStore { store in try store.putBatch(writes, now: now) }.whenComplete { outcome in
            switch outcome {
            case .success(let results):
                for (pending, result) in zip(batch, results) {
                    switch result {
                    case .success(let stored):
                        self.touch(stored.speakerID)
                        self.admit(stored)
                        var answer = Voxsync_V1_PutResponse()
                        answer.version = stored.version
                        answer.origin = stored.origin
                        pending.promise.succeed(.putOk(answer))
                        self.metrics.write.recordNanoseconds((NIODeadline.now() - pending.arrived).nanoseconds)
                    case .failure(let error):
                        pending.promise.succeed(Self.answer(for: error))
                    }
                }
            case .failure(let error):
                for pending in batch { pending.promise.succeed(Self.answer(for: error)) }
            }
            self.onCommitted?()
            self.run(self.commits.batchFinished())
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
            loop.scheduleTask(in: commitHold) { self.run(self.commits.holdTimedOut(id: id)) }
        }
    }
}
