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

    /// `connectionLoop` is the loop of the connection that sent the write: its answer is made
    /// there, so it needs no further hop.
    func put(_ request: Voxsync_V1_PutRequest, answeredOn connectionLoop: EventLoop) -> ServerResponse {
        do throws(ProfileRules.Violation) {
            try rules.checkModel(request.profile.embedding.model, field: "embedding.model")
            for (index, sample) in request.profile.samples.enumerated() {
                try rules.checkModel(sample.model, field: "samples[\(index)].model")
            }
        } catch {
            return .now(Self.answer(for: error))
        }
        let record = ProfileRecord(
            speakerID: request.profile.speakerID, embedding: request.profile.embedding.values,
            samples: request.profile.samples.map(\.values), threshold: request.profile.threshold,
            metadata: request.profile.metadata)
        let pending = PendingPut(
            record: record, expectedVersion: request.hasExpectedVersion ? request.expectedVersion : nil,
            promise: connectionLoop.makePromise())
        run(locked { commits.enqueue(pending) })
        return .later(pending.promise.futureResult)
    }

    /// Commits `batch` in one transaction on the store thread, answers each write (only now:
    /// after the commit), and starts the writes that queued up meanwhile.
    ///
    /// The cache takes the new versions on the store's thread right after the commit, like
    /// every other result of the store (a miss's read, a delete, a refresh): in the order the
    /// store produced them, so a read that finished before this commit can never put back what
    /// the commit replaced. Each connection's loop then gets one task with the answers of its
    /// connections — from the store's thread directly: handing them through `loop` first put
    /// one more thread's wake-up on every commit's answer path (about 5 % fewer enrolls per
    /// second in alternated runs, 2026-12-02). `loop` still gets the sync worker's nudge, off
    /// that path.
    private func commit(_ batch: [PendingPut]) {
        let writes = batch.map { (profile: $0.record, expectedVersion: $0.expectedVersion) }
        let now = Self.nowMilliseconds()
        onStore({ store in try store.putBatch(writes, now: now) }) { outcome in
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
            case .failure(let error as StoreError):
                answers = Array(repeating: Self.answer(for: error), count: batch.count)
            case .failure:
                // The store thread is stopping (the worker shuts down): nothing was written.
                let answer = Self.error(.unavailable, "the cache worker is shutting down and did not write this; retry once it is back")
                answers = Array(repeating: answer, count: batch.count)
            }
            self.deliver(Array(zip(batch, answers)))
            if answers.contains(where: { if case .putOk = $0 { true } else { false } }) { self.onCommitted?() }
            self.run(self.locked { self.commits.batchFinished() })
        }
    }

    /// Completes each write's promise, made on its connection's loop: one task per loop for all
    /// of its answers (not one wake-up per answer); at once for the calling thread's own loop.
    private func deliver(_ answered: [(pending: PendingPut, answer: Envelope.OneOf_Message)]) {
        let metrics = self.metrics
        @Sendable func complete(_ answered: [(pending: PendingPut, answer: Envelope.OneOf_Message)]) {
            for (pending, answer) in answered {
                pending.promise.succeed(answer)
                if case .putOk = answer {
                    metrics.write.recordNanoseconds((NIODeadline.now() - pending.arrived).nanoseconds)
                }
            }
        }
        var remaining = answered[...]
        while let target = remaining.first?.pending.promise.futureResult.eventLoop {
            let mine = remaining.filter { $0.pending.promise.futureResult.eventLoop === target }
            remaining = remaining.filter { $0.pending.promise.futureResult.eventLoop !== target }[...]
            if target.inEventLoop {
                complete(mine)
            } else {
                target.execute { complete(mine) }
            }
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
