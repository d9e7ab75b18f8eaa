import Testing
import VoxChaos

@Suite struct WriteLedgerTests {
    let dimension = 8
    let speaker = "chaos-0-1"

    func row(seq: Int, version: UInt64, deleted: Bool = false) -> ObservedRow {
        ObservedRow(speakerID: speaker, version: version, deleted: deleted,
                    metadata: deleted ? "" : ChaosContent.metadata(speaker: speaker, seq: seq), threshold: ChaosContent.threshold,
                    embedding: deleted ? [] : ChaosContent.embedding(speaker: speaker, seq: seq, dimension: dimension))
    }

    @Test func contentIsRecomputableAndDistinct() {
        let a = ChaosContent.embedding(speaker: speaker, seq: 1, dimension: dimension)
        #expect(a == ChaosContent.embedding(speaker: speaker, seq: 1, dimension: dimension))
        #expect(a != ChaosContent.embedding(speaker: speaker, seq: 2, dimension: dimension))
        #expect(a != ChaosContent.embedding(speaker: "chaos-0-2", seq: 1, dimension: dimension))
        #expect(a.allSatisfy { $0 >= -1 && $0 < 1 } && a.contains { $0 != 0 })
        #expect(ChaosContent.seq(inMetadata: ChaosContent.metadata(speaker: speaker, seq: 42), speaker: speaker) == 42)
        #expect(ChaosContent.seq(inMetadata: ChaosContent.metadata(speaker: "chaos-0-10", seq: 42), speaker: speaker) == nil)
        #expect(ChaosContent.matches(row(seq: 3, version: 9), seq: 3, dimension: dimension))
        var altered = row(seq: 3, version: 9)
        altered.embedding[2] += 0.001
        #expect(!ChaosContent.matches(altered, seq: 3, dimension: dimension))
    }

    @Test func theLastAcknowledgedPutIsOwed() {
        var ledger = WriteLedger()
        ledger.putAcknowledged(speaker, seq: 1, version: 10)
        ledger.putAcknowledged(speaker, seq: 2, version: 20)
        #expect(ledger.verdict(speaker, row: row(seq: 2, version: 20), dimension: dimension) == .intact)
        // The earlier content, an older version, no row, other content at the same version: lost.
        #expect(ledger.verdict(speaker, row: row(seq: 1, version: 10), dimension: dimension) != .intact)
        #expect(ledger.verdict(speaker, row: nil, dimension: dimension) != .intact)
        #expect(ledger.verdict(speaker, row: row(seq: 1, version: 20), dimension: dimension) != .intact)
        if case .lost(let why) = ledger.verdict(speaker, row: nil, dimension: dimension) {
            #expect(why.contains("#2") && why.contains("v20") && why.contains("no row"))
        } else {
            Issue.record("no row is a lost write")
        }
    }

    @Test func anUnansweredWriteMayLandButOnlyNewerAndExactly() {
        var ledger = WriteLedger()
        ledger.putAcknowledged(speaker, seq: 1, version: 10)
        ledger.putUncertain(speaker, seq: 2)
        #expect(ledger.verdict(speaker, row: row(seq: 1, version: 10), dimension: dimension) == .intact)
        #expect(ledger.verdict(speaker, row: row(seq: 2, version: 11), dimension: dimension) == .uncertainLanded)
        // Not with an older version than the acknowledged one, and not a write never sent.
        #expect(ledger.verdict(speaker, row: row(seq: 2, version: 9), dimension: dimension) != .uncertainLanded)
        #expect(ledger.verdict(speaker, row: row(seq: 3, version: 11), dimension: dimension) != .uncertainLanded)
        // An unanswered put is no excuse for a tombstone.
        #expect(ledger.verdict(speaker, row: row(seq: 0, version: 12, deleted: true), dimension: dimension) != .intact)
    }

    @Test func deletesOweAbsenceOrATombstone() {
        var ledger = WriteLedger()
        ledger.putAcknowledged(speaker, seq: 1, version: 10)
        ledger.deleteAcknowledged(speaker, version: 15, existed: true)
        #expect(ledger.verdict(speaker, row: row(seq: 0, version: 15, deleted: true), dimension: dimension) == .intact)
        #expect(ledger.verdict(speaker, row: row(seq: 1, version: 10), dimension: dimension) != .intact, "resurrected")
        #expect(ledger.verdict(speaker, row: row(seq: 0, version: 14, deleted: true), dimension: dimension) != .intact)
        // A resent delete whose first copy applied: existed=false, no version; the tombstone of
        // the first copy (newer than the put) is what is there.
        var resent = WriteLedger()
        resent.putAcknowledged(speaker, seq: 1, version: 10)
        resent.deleteAcknowledged(speaker, version: 0, existed: false)
        #expect(resent.verdict(speaker, row: row(seq: 0, version: 12, deleted: true), dimension: dimension) == .intact)
        #expect(resent.verdict(speaker, row: row(seq: 1, version: 10), dimension: dimension) != .intact)
        // ... and with no tombstone at all, the acknowledged put was lost before the delete.
        #expect(resent.verdict(speaker, row: nil, dimension: dimension) != .intact)
        #expect(resent.verdict(speaker, row: row(seq: 0, version: 10, deleted: true), dimension: dimension) != .intact)
        // A delete of a speaker that never had an acknowledged profile owes nothing but absence.
        var never = WriteLedger()
        never.deleteAcknowledged(speaker, version: 0, existed: false)
        #expect(never.verdict(speaker, row: nil, dimension: dimension) == .intact)
        #expect(never.acknowledged(speaker) == .gone(version: 0, mustExist: false))
        // A delete with no answer may have landed after an acknowledged put.
        var unanswered = WriteLedger()
        unanswered.putAcknowledged(speaker, seq: 1, version: 10)
        unanswered.deleteUncertain(speaker)
        #expect(unanswered.verdict(speaker, row: row(seq: 0, version: 11, deleted: true), dimension: dimension) == .uncertainLanded)
    }

    @Test func aRowNobodyWroteIsFlagged() {
        let ledger = WriteLedger()
        #expect(ledger.verdict(speaker, row: nil, dimension: dimension) == .intact)
        #expect(ledger.verdict(speaker, row: row(seq: 5, version: 3), dimension: dimension) != .intact)
        let audit = LedgerAudit.run(ledger, rows: [speaker: row(seq: 5, version: 3), "someone-else": row(seq: 1, version: 1)],
                                    dimension: dimension)
        #expect(audit.speakersChecked == 1, "only chaos speakers are judged")
        #expect(audit.lost.map(\.speaker) == [speaker])
    }

    @Test func auditCountsEveryVerdict() {
        var ledger = WriteLedger()
        ledger.putAcknowledged("chaos-0-1", seq: 1, version: 10)
        ledger.putAcknowledged("chaos-0-2", seq: 1, version: 11)
        ledger.putUncertain("chaos-0-2", seq: 2)
        ledger.putAcknowledged("chaos-0-3", seq: 1, version: 12)
        func stored(_ id: String, _ seq: Int, _ version: UInt64) -> ObservedRow {
            ObservedRow(speakerID: id, version: version, deleted: false, metadata: ChaosContent.metadata(speaker: id, seq: seq),
                        threshold: ChaosContent.threshold, embedding: ChaosContent.embedding(speaker: id, seq: seq, dimension: dimension))
        }
        let audit = LedgerAudit.run(ledger, rows: ["chaos-0-1": stored("chaos-0-1", 1, 10), "chaos-0-2": stored("chaos-0-2", 2, 13)],
                                    dimension: dimension)
        #expect(audit.acknowledgedWrites == 3)
        #expect(audit.speakersChecked == 3 && audit.intact == 1 && audit.uncertainLanded == 1)
        #expect(audit.lost.map(\.speaker) == ["chaos-0-3"])
    }

    @Test func aLostAnswerLeavesTheSpeakerInDoubtUntilTheNextAcknowledgedWrite() {
        var ledger = WriteLedger()
        ledger.putAcknowledged(speaker, seq: 1, version: 10)
        #expect(ledger.speakers[speaker]?.inDoubt == false && ledger.speakers[speaker]?.lastAcknowledgedSeq == 1)
        ledger.putUncertain(speaker, seq: 2)
        #expect(ledger.speakers[speaker]?.putInDoubt == true && ledger.speakers[speaker]?.deleteInDoubt == false)
        ledger.deleteUncertain(speaker)
        #expect(ledger.speakers[speaker]?.deleteInDoubt == true)
        ledger.deleteAcknowledged(speaker, version: 12, existed: true)
        #expect(ledger.speakers[speaker]?.inDoubt == false)
        // The last acknowledged put's content is kept after the delete (the probe of a deleted speaker).
        #expect(ledger.speakers[speaker]?.lastAcknowledgedSeq == 1)
        ledger.putUncertain(speaker, seq: 3)
        ledger.putAcknowledged(speaker, seq: 4, version: 14)
        #expect(ledger.speakers[speaker]?.inDoubt == false && ledger.speakers[speaker]?.lastAcknowledgedSeq == 4)
        // The audit's allowance for unanswered writes is kept for the whole run.
        #expect(ledger.speakers[speaker]?.uncertainPuts == [2, 3] && ledger.speakers[speaker]?.uncertainDeletes == 1)
    }

    @Test func mergingKeepsEachClientsSpeakers() {
        var a = WriteLedger()
        a.putAcknowledged("chaos-0-1", seq: 1, version: 1)
        var b = WriteLedger()
        b.putAcknowledged("chaos-1-1", seq: 1, version: 2)
        b.deleteAcknowledged("chaos-1-1", version: 3, existed: true)
        a.merge(b)
        #expect(a.speakers.count == 2 && a.acknowledgedWrites == 3)
        #expect(a.acknowledged("chaos-1-1") == .gone(version: 3, mustExist: true))
    }
}
