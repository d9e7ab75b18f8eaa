import VoxCore
import VoxStore

/// The pull: changes other instances wrote, read by transaction horizon (see `PullCursor`),
/// validated, and applied under last-writer-wins.
extension SyncEngine {
    /// Applies the remote changes of other instances; returns how many local rows changed, or
    /// nil on failure.
    @discardableResult
    public func pull() async -> Int? {
        guard let remote, await ensureSchema() else { return nil }
        var changedTotal = 0
        do {
            if cursor == nil { cursor = try await onStore { store in try store.pullCursor() } }
        } catch {
            _ = localFailure(error)
            return nil
        }
        // The horizon is read once per pull: on a busy server it moves all the time, and
        // chasing it would never end (nor let the drain run). What commits meanwhile is the
        // next pull's window. At most `maxPullPages` pages per call, for the same reason.
        var horizon: Int64?
        for _ in 0..<settings.maxPullPages {
            guard acquire() else { return nil }
            var cursor = self.cursor!
            let rows: [RemoteStore.PulledRow]
            do {
                if horizon == nil { horizon = try await remote.horizon(timeout: settings.remoteTimeout) }
                guard let page = cursor.nextPage(observedHorizon: horizon!) else {
                    succeeded()
                    break
                }
                rows = try await remote.pull(page, excludingOrigin: origin, limit: settings.pullPageSize, timeout: settings.remoteTimeout)
                succeeded()
            } catch {
                transientFailure(error)
                return nil
            }
            let valid = rows.filter(isAcceptable)
            cursor.pageApplied(last: rows.last.map { ($0.changedBy, $0.record.speakerID) }, full: rows.count == settings.pullPageSize)
            let records = valid.map(\.record)
            let saved = cursor
            let changed: [String]
            do {
                changed = try await onStore { store in try store.applyRemote(records, cursor: saved) }
            } catch {
                _ = localFailure(error)
                return nil
            }
            self.cursor = cursor
            lastPull = Self.wallMilliseconds()
            pulledTotal += UInt64(changed.count)
            changedTotal += changed.count
            if !changed.isEmpty { onRemoteChanges(changed) }
        }
        return changedTotal
    }

    /// Whether a pulled row may enter the local store: rows from PostgreSQL are input from
    /// outside like any other, and one bad row must not stop the feed (it is skipped, logged and
    /// counted; the cursor moves past it).
    private func isAcceptable(_ row: RemoteStore.PulledRow) -> Bool {
        do throws(ProfileRules.Violation) {
            guard row.dimension == rules.dimension else {
                throw ProfileRules.Violation(kind: .dimensionMismatch, field: "dimension", message: "the row has \(row.dimension)-dimensional embeddings; this store holds \(rules.dimension)")
            }
            try rules.checkModel(row.model, field: "model")
            try rules.checkSpeakerID(row.record.speakerID)
            guard !row.record.origin.isEmpty, row.record.origin.utf8.count <= 256 else {
                throw ProfileRules.Violation(kind: .invalidArgument, field: "origin", message: "must be 1-256 bytes")
            }
            if !row.record.deleted || !row.record.embedding.isEmpty {
                try rules.checkVector(row.record.embedding, field: "embedding")
            }
            try rules.checkSamples(row.record.samples)
            try rules.checkThreshold(row.record.threshold)
            try rules.checkMetadata(row.record.metadata)
            return true
        } catch {
            remoteRowsSkipped += 1
            logger.error("skipped a remote row that breaks the profile rules; fix it in PostgreSQL", metadata: [
                "speaker": "\(row.record.speakerID.prefix(256))", "origin": "\(row.record.origin.prefix(64))", "error": "\(error)",
            ])
            return false
        }
    }
}
