/// What the clients of a chaos run were told about their writes, and what the store therefore
/// owes them.
///
/// Each speaker belongs to one client, which sends its operations one at a time, so a
/// speaker's acknowledged writes have an order. The store owes the *last acknowledged* state
/// of each speaker: that put's content at that version, or no live profile after a delete.
/// A write whose answer never came (the worker was killed with it in flight, or the call timed
/// out) may or may not have been applied; it is remembered as *uncertain*, and the store may
/// show it instead — but only with a newer version than the acknowledged one, and only with
/// exactly its content. Until the speaker's next acknowledged put or delete such a write is
/// *in doubt*, and answers about the speaker are not held to `AnswerRules`' strict rules.
public struct WriteLedger: Sendable, Equatable {
    /// The last acknowledged state of one speaker.
    public enum Acknowledged: Sendable, Equatable {
        /// Write `seq` was acknowledged with `version`.
        case live(version: UInt64, seq: Int)
        /// A delete was acknowledged: the store owes a tombstone of at least `version`, or —
        /// when `mustExist` is false (the speaker never had an acknowledged profile) — no row.
        /// A delete that found nothing right after an acknowledged put is a resent delete whose
        /// first copy applied (VoxClient resends deletes across a broken connection), so its
        /// tombstone must be there, newer than that put.
        case gone(version: UInt64, mustExist: Bool)
    }

    public struct Speaker: Sendable, Equatable {
        public var acknowledged: Acknowledged?
        /// Write numbers of puts with no answer.
        public var uncertainPuts: Set<Int> = []
        /// Deletes with no answer.
        public var uncertainDeletes = 0
        public var acknowledgedWrites = 0
        /// A put (or a delete) of this speaker lost its answer since its last acknowledged
        /// write: the store may hold that write or not, so answers about the speaker are not
        /// checked strictly (`AnswerRules`) until the next acknowledged put or delete clears
        /// the doubt.
        public var putInDoubt = false
        public var deleteInDoubt = false
        public var inDoubt: Bool { putInDoubt || deleteInDoubt }
        /// Write number of the last acknowledged put, kept after a delete: the content a probe
        /// of a live or a deleted speaker uses.
        public var lastAcknowledgedSeq: Int?
    }

    public private(set) var speakers: [String: Speaker] = [:]

    public init() {}

    public mutating func putAcknowledged(_ speaker: String, seq: Int, version: UInt64) {
        var entry = speakers[speaker, default: Speaker()]
        entry.acknowledged = .live(version: version, seq: seq)
        entry.acknowledgedWrites += 1
        entry.lastAcknowledgedSeq = seq
        entry.putInDoubt = false
        entry.deleteInDoubt = false
        speakers[speaker] = entry
    }

    public mutating func putUncertain(_ speaker: String, seq: Int) {
        speakers[speaker, default: Speaker()].uncertainPuts.insert(seq)
        speakers[speaker, default: Speaker()].putInDoubt = true
    }

    public mutating func deleteAcknowledged(_ speaker: String, version: UInt64, existed: Bool) {
        var entry = speakers[speaker, default: Speaker()]
        switch (entry.acknowledged, existed) {
        case (_, true): entry.acknowledged = .gone(version: version, mustExist: true)
        case (.live(let previous, _)?, false): entry.acknowledged = .gone(version: previous + 1, mustExist: true)
        case (.gone?, false): break
        case (nil, false): entry.acknowledged = .gone(version: 0, mustExist: false)
        }
        entry.acknowledgedWrites += 1
        entry.putInDoubt = false
        entry.deleteInDoubt = false
        speakers[speaker] = entry
    }

    public mutating func deleteUncertain(_ speaker: String) {
        speakers[speaker, default: Speaker()].uncertainDeletes += 1
        speakers[speaker, default: Speaker()].deleteInDoubt = true
    }

    /// Merges another client's ledger (clients own disjoint speakers).
    public mutating func merge(_ other: WriteLedger) {
        speakers.merge(other.speakers) { mine, _ in mine }
    }

    public var acknowledgedWrites: Int { speakers.values.reduce(0) { $0 + $1.acknowledgedWrites } }

    /// The last acknowledged state of `speaker`.
    public func acknowledged(_ speaker: String) -> Acknowledged? { speakers[speaker]?.acknowledged }

    // MARK: Checks

    /// What the audit found for one speaker.
    public enum Verdict: Sendable, Equatable {
        /// The acknowledged state is there.
        case intact
        /// A newer write whose answer was lost is there instead (allowed).
        case uncertainLanded
        /// The acknowledged state is missing or was overwritten by something that was not
        /// written: an acknowledged write was lost.
        case lost(String)
    }

    /// Judges `row` (nil: no row at all) against what `speaker` was acknowledged.
    public func verdict(_ speaker: String, row: ObservedRow?, dimension: Int) -> Verdict {
        let entry = speakers[speaker] ?? Speaker()
        func landedUncertain(newerThan version: UInt64) -> Bool {
            guard let row, row.version > version else { return false }
            if row.deleted { return entry.uncertainDeletes > 0 }
            guard let seq = ChaosContent.seq(inMetadata: row.metadata, speaker: speaker) else { return false }
            return entry.uncertainPuts.contains(seq) && ChaosContent.matches(row, seq: seq, dimension: dimension)
        }
        func describe(_ row: ObservedRow?) -> String {
            guard let row else { return "no row" }
            return row.deleted ? "a tombstone v\(row.version)" : "v\(row.version) '\(row.metadata)'"
        }
        switch entry.acknowledged {
        case nil:
            if row == nil { return .intact }
            return landedUncertain(newerThan: 0) ? .uncertainLanded : .lost("never acknowledged, yet the store has \(describe(row))")
        case .live(let version, let seq)?:
            if let row, !row.deleted, row.version == version, ChaosContent.matches(row, seq: seq, dimension: dimension) { return .intact }
            if landedUncertain(newerThan: version) { return .uncertainLanded }
            return .lost("acknowledged write #\(seq) v\(version), the store has \(describe(row))")
        case .gone(let version, let mustExist)?:
            if let row, row.deleted, row.version >= version { return .intact }
            if row == nil, !mustExist { return .intact }
            if landedUncertain(newerThan: version) { return .uncertainLanded }
            return .lost("acknowledged delete (tombstone ≥ v\(version)), the store has \(describe(row))")
        }
    }
}

/// The verdicts over every speaker of a run.
public struct LedgerAudit: Sendable, Equatable {
    public var speakersChecked = 0
    public var acknowledgedWrites = 0
    public var intact = 0
    public var uncertainLanded = 0
    /// Speaker and what is wrong, for every lost acknowledged write.
    public var lost: [(speaker: String, why: String)] = []

    public init() {}

    /// Judges every speaker the ledger knows, and every chaos row the store has that the
    /// ledger does not (a write nobody sent).
    public static func run(_ ledger: WriteLedger, rows: [String: ObservedRow], dimension: Int) -> LedgerAudit {
        var audit = LedgerAudit()
        audit.acknowledgedWrites = ledger.acknowledgedWrites
        let speakers = Set(ledger.speakers.keys).union(rows.keys.filter { ChaosContent.isChaosSpeaker($0) })
        for speaker in speakers.sorted() {
            audit.speakersChecked += 1
            switch ledger.verdict(speaker, row: rows[speaker], dimension: dimension) {
            case .intact: audit.intact += 1
            case .uncertainLanded: audit.uncertainLanded += 1
            case .lost(let why): audit.lost.append((speaker, why))
            }
        }
        return audit
    }

    public static func == (lhs: LedgerAudit, rhs: LedgerAudit) -> Bool {
        lhs.speakersChecked == rhs.speakersChecked && lhs.acknowledgedWrites == rhs.acknowledgedWrites && lhs.intact == rhs.intact
            && lhs.uncertainLanded == rhs.uncertainLanded && lhs.lost.map(\.speaker) == rhs.lost.map(\.speaker)
            && lhs.lost.map(\.why) == rhs.lost.map(\.why)
    }
}

extension ChaosContent {
    /// Speaker ids of chaos runs: `chaos-<client>-<n>`.
    public static func speakerID(client: Int, index: Int) -> String { "chaos-\(client)-\(index)" }

    public static func isChaosSpeaker(_ id: String) -> Bool { id.hasPrefix("chaos-") }
}
