import Foundation
import VoxChaos
import VoxClient
import VoxWire

/// The chaos run's operations, for the report's rows.
enum ChaosOperation: String, CaseIterable, Sendable {
    case put, delete, get, verify, identify

    /// Whether VoxClient resends it across a broken connection, so a failure is a failure of
    /// the library's promise rather than an expected casualty of a kill.
    var isIdempotent: Bool { self != .put }
}

/// What the clients did, shared with the progress line and the report.
struct LoadTally: Sendable {
    struct Counts: Sendable {
        var sent = 0
        var ok = 0
        var notFound = 0
        var failed = 0
    }

    var operations: [ChaosOperation: Counts] = [:]
    /// (operation, kind of failure) → count, and one message of each.
    var failures: [String: Int] = [:]
    var failureExamples: [String: String] = [:]
    /// Answers held to `AnswerRules` (per rule), the rules they broke, and a few examples.
    var answerChecks: [AnswerRules.Kind: Int] = [:]
    var answerViolations: [AnswerRules.Kind: Int] = [:]
    var violationExamples: [AnswerRules.Kind: [String]] = [:]

    var violations: Int { answerViolations.values.reduce(0, +) }

    mutating func record(_ judgement: AnswerRules.Judgement) {
        for kind in judgement.checked { answerChecks[kind, default: 0] += 1 }
        for violation in judgement.violations {
            answerViolations[violation.kind, default: 0] += 1
            if violationExamples[violation.kind, default: []].count < 3 { violationExamples[violation.kind, default: []].append(violation.detail) }
        }
    }

    var done: Int { operations.values.reduce(0) { $0 + $1.ok + $1.notFound + $1.failed } }
    var idempotentFailures: Int { operations.filter { $0.key.isIdempotent }.reduce(0) { $0 + $1.value.failed } }

    /// Short failure kinds for the progress line ("connection lost 3, timed out 1").
    var failureSummary: String {
        var byKind: [String: Int] = [:]
        for (key, count) in failures { byKind[String(key.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces), default: 0] += count }
        return byKind.isEmpty ? "none" : byKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}

/// Names a client failure for the tables.
func failureKind(_ error: VoxClientError) -> String {
    switch error.code {
    case .connectionLost: "connection lost"
    case .timedOut: "timed out"
    case .unavailable: "unavailable"
    case .protocolViolation: "protocol violation"
    case .server(let code): "server \(code)"
    }
}

/// One client of the chaos load: it owns `speakers` speakers (`chaos-<client>-<n>`) and sends
/// one operation at a time — enrolls and updates whose content the audit can recompute,
/// deletes, gets, verifies and identifies — until `running` turns false. Every answer to a
/// write goes into its `WriteLedger`; every answer to a read of its own speakers is judged
/// against that ledger by `AnswerRules`, and what it broke is counted in the tally (a write
/// whose answer was lost leaves its speaker in doubt, unjudged, until the next acknowledged
/// write of it).
struct ChaosLoadClient: Sendable {
    let index: Int
    let speakers: Int
    let dimension: Int
    let seed: UInt64
    let pause: Duration
    let socketPath: String

    func run(running: Locked<Bool>, tally: Locked<LoadTally>) async -> WriteLedger {
        var configuration = VoxClientConfiguration(socketPath: socketPath)
        configuration.clientName = "voxsync-bench-chaos-\(index)"
        // Longer than a SIGSTOPped worker's life (heartbeat timeout) plus its restart.
        configuration.requestTimeout = .seconds(15)
        configuration.connectTimeout = .seconds(15)
        configuration.maxRetries = 20
        let client = VoxClient(configuration: configuration)
        defer { client.close() }
        var random = SplitMix64(seed: seed &+ UInt64(index) &* 0x1000_0000_01B3)
        var ledger = WriteLedger()
        var seqs = [Int](repeating: 0, count: speakers)

        while running.current {
            let number = Int(random.next() % UInt64(speakers))
            let speaker = ChaosContent.speakerID(client: index, index: number)
            let draw = random.unit()
            let operation: ChaosOperation = draw < 0.30 ? .put : draw < 0.36 ? .delete : draw < 0.56 ? .get : draw < 0.86 ? .verify : .identify
            tally.withLock { $0.operations[operation, default: .init()].sent += 1 }
            var outcome: Result<Bool, VoxClientError> = .success(true)  // true: ok, false: not found
            switch operation {
            case .put:
                seqs[number] += 1
                let seq = seqs[number]
                var put = Voxsync_V1_PutRequest()
                put.profile.speakerID = speaker
                put.profile.embedding.values = ChaosContent.embedding(speaker: speaker, seq: seq, dimension: dimension)
                put.profile.threshold = ChaosContent.threshold
                put.profile.metadata = ChaosContent.metadata(speaker: speaker, seq: seq)
                outcome = await call(client, .put(put)) { answer in
                    guard case .putOk(let ok) = answer else { return nil }
                    ledger.putAcknowledged(speaker, seq: seq, version: ok.version)
                    return true
                }
                if case .failure = outcome { ledger.putUncertain(speaker, seq: seq) }
            case .delete:
                var delete = Voxsync_V1_DeleteRequest()
                delete.speakerID = speaker
                outcome = await call(client, .delete(delete)) { answer in
                    guard case .deleteOk(let ok) = answer else { return nil }
                    // existed=false after an acknowledged put is a resent delete (its first copy
                    // applied) or a lost put: the audit tells them apart by the tombstone.
                    ledger.deleteAcknowledged(speaker, version: ok.version, existed: ok.existed)
                    return true
                }
                if case .failure = outcome { ledger.deleteUncertain(speaker) }
            case .get:
                var get = Voxsync_V1_GetRequest()
                get.speakerID = speaker
                var found: ObservedRow?
                outcome = await call(client, .get(get)) { answer in
                    guard case .getOk(let ok) = answer else { return nil }
                    // The requested id, not the answered one: another speaker's profile must not pass.
                    found = ObservedRow(speakerID: speaker, version: ok.profile.version, deleted: false, metadata: ok.profile.metadata,
                                        threshold: ok.profile.threshold, embedding: ok.profile.embedding.values)
                    return true
                }
                if case .success = outcome {
                    let judgement = AnswerRules.get(ledger, speaker: speaker, row: found, dimension: dimension)
                    tally.withLock { $0.record(judgement) }
                }
            case .verify:
                let seq = probeSeq(speaker, latest: seqs[number], ledger: ledger, random: &random)
                var verify = Voxsync_V1_VerifyRequest()
                verify.speakerID = speaker
                verify.probe.values = ChaosContent.embedding(speaker: speaker, seq: seq, dimension: dimension)
                var scored: Voxsync_V1_VerifyResponse?
                outcome = await call(client, .verify(verify)) { answer in
                    guard case .verifyOk(let ok) = answer else { return nil }
                    scored = ok
                    return true
                }
                if case .success = outcome {
                    let answer: AnswerRules.VerifyAnswer = scored.map { .scored(score: $0.score, accepted: $0.accepted) } ?? .notFound
                    let judgement = AnswerRules.verify(ledger, speaker: speaker, seq: seq, answer: answer)
                    tally.withLock { $0.record(judgement) }
                }
            case .identify:
                let seq = probeSeq(speaker, latest: seqs[number], ledger: ledger, random: &random)
                var identify = Voxsync_V1_IdentifyRequest()
                identify.probe.values = ChaosContent.embedding(speaker: speaker, seq: seq, dimension: dimension)
                identify.k = 5
                var matches: [AnswerRules.Match] = []
                outcome = await call(client, .identify(identify)) { answer in
                    guard case .identifyOk(let ok) = answer else { return nil }
                    matches = ok.matches.map { AnswerRules.Match(speakerID: $0.speakerID, score: $0.score) }
                    return true
                }
                if case .success(true) = outcome {
                    let judgement = AnswerRules.identify(ledger, client: index, speaker: speaker, seq: seq, matches: matches)
                    tally.withLock { $0.record(judgement) }
                }
            }
            tally.withLock { tally in
                switch outcome {
                case .success(true): tally.operations[operation]!.ok += 1
                case .success(false): tally.operations[operation]!.notFound += 1
                case .failure(let error):
                    tally.operations[operation]!.failed += 1
                    let key = "\(operation.rawValue): \(failureKind(error))"
                    tally.failures[key, default: 0] += 1
                    if tally.failureExamples[key] == nil { tally.failureExamples[key] = error.message }
                }
            }
            if pause > .zero { try? await Task.sleep(for: pause) }
        }
        return ledger
    }

    /// The write of `speaker` whose content a verify or identify probes with: half the time
    /// the last acknowledged put (also when a delete followed it), a quarter the last put sent,
    /// a quarter any earlier put (content the speaker should no longer have).
    private func probeSeq(_ speaker: String, latest: Int, ledger: WriteLedger, random: inout SplitMix64) -> Int {
        let draw = random.unit()
        if draw < 0.5, let acknowledged = ledger.speakers[speaker]?.lastAcknowledgedSeq { return acknowledged }
        if draw < 0.75 || latest <= 1 { return max(1, latest) }
        return 1 + Int(random.next() % UInt64(latest))
    }

    /// Sends `request`; `accept` turns the expected answer into `true` (nil: unexpected).
    /// NOT_FOUND is an answer (`false`), not a failure.
    private func call(
        _ client: VoxClient, _ request: Envelope.OneOf_Message, accept: (Envelope.OneOf_Message) -> Bool?
    ) async -> Result<Bool, VoxClientError> {
        do {
            let answer = try await client.send(request)
            guard let ok = accept(answer) else {
                return .failure(VoxClientError(.protocolViolation, "\(request.name) answered with \(answer.name)"))
            }
            return .success(ok)
        } catch {
            if case .server(.notFound) = error.code { return .success(false) }
            return .failure(error)
        }
    }
}
