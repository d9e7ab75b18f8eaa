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
    /// Reads that returned an older state than the reader had been acknowledged.
    var staleReads: [String] = []

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
/// write goes into its `WriteLedger`.
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
                outcome = await call(client, .get(get)) { answer in
                    guard case .getOk(let ok) = answer else { return nil }
                    if ledger.isStaleRead(speaker, foundVersion: ok.profile.version) {
                        tally.withLock { $0.staleReads.append("get of \(speaker) answered v\(ok.profile.version), older than acknowledged") }
                    }
                    return true
                }
                if case .success(false) = outcome, ledger.isStaleRead(speaker, foundVersion: nil) {
                    tally.withLock { $0.staleReads.append("get of \(speaker) answered not found after an acknowledged put") }
                }
            case .verify:
                var verify = Voxsync_V1_VerifyRequest()
                verify.speakerID = speaker
                verify.probe.values = ChaosContent.embedding(speaker: speaker, seq: max(1, seqs[number]), dimension: dimension)
                outcome = await call(client, .verify(verify)) { answer in
                    guard case .verifyOk = answer else { return nil }
                    return true
                }
                if case .success(false) = outcome, ledger.isStaleRead(speaker, foundVersion: nil) {
                    tally.withLock { $0.staleReads.append("verify of \(speaker) answered not found after an acknowledged put") }
                }
            case .identify:
                var identify = Voxsync_V1_IdentifyRequest()
                identify.probe.values = ChaosContent.embedding(speaker: speaker, seq: max(1, seqs[number]), dimension: dimension)
                identify.k = 5
                outcome = await call(client, .identify(identify)) { answer in
                    guard case .identifyOk = answer else { return nil }
                    return true
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
