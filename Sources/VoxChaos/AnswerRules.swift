/// What a chaos client may be answered about its own speakers, given its `WriteLedger`.
///
/// Each speaker belongs to one client, and only that client writes it, so the client's ledger
/// is authoritative for it. A client sends one request at a time, so when a read is sent no
/// put or delete of this client is in flight, and its ledger then (the state these rules take)
/// is the speaker's last acknowledged state. The load only records what these rules return.
///
/// A speaker is judged strictly only when it is *settled*: no put or delete of it lost its
/// answer (connection lost, timed out) since its last acknowledged write. Such an in-doubt
/// write may or may not be in the store, so while one is outstanding the identify, verify and
/// stale-content rules skip the speaker; the next acknowledged put or delete of it clears the
/// doubt. A get is judged by the audit's own rules even then (`WriteLedger.verdict`): exactly
/// the acknowledged profile, or a newer version that is exactly an unanswered put; not found
/// only when no delete of it is in doubt.
///
/// Probes are chaos content: write `seq` of one of the client's own speakers.
public enum AnswerRules {
    /// A cosine of a probe with itself, allowing for float rounding.
    public static let sameContentScore: Float = 0.999

    /// The rules, one per kind of violation.
    public enum Kind: String, Sendable, Hashable, CaseIterable, Comparable {
        /// Identify with a settled live speaker's acknowledged content: the first match must be
        /// that speaker with a score ≈ 1.
        case identifyLiveFirst = "identify: own live speaker first at ≈ 1"
        /// No settled own speaker whose last acknowledged write is a delete (or that was never
        /// written) may be among identify's matches, probed with its last content or not.
        case identifyNoDeleted = "identify: no deleted own speaker matched"
        /// A settled live speaker must not score ≈ 1 against content it no longer has.
        case identifyNoStale = "identify: no own speaker ≈ 1 on old content"
        /// Verify of a settled live speaker with its acknowledged content: accepted, score ≈ 1.
        case verifyLiveAccepted = "verify: own live speaker accepted at ≈ 1"
        /// Verify of a settled live speaker with other content of it: found, and not ≈ 1.
        case verifyLiveOtherContent = "verify: own live speaker, older content: found, not ≈ 1"
        /// Verify of a settled deleted (or never written) speaker: not found.
        case verifyDeletedNotFound = "verify: deleted own speaker not found"
        /// Get: the acknowledged profile exactly, or a newer unanswered put exactly.
        case getAcknowledged = "get: acknowledged profile (or a newer unanswered put)"
        /// Get of a speaker whose last acknowledged write is a delete: not found, or a newer
        /// version that is exactly an unanswered put.
        case getDeletedNotFound = "get: deleted own speaker not found (or a newer unanswered put)"

        public static func < (lhs: Kind, rhs: Kind) -> Bool {
            allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
        }
    }

    public struct Violation: Sendable, Equatable {
        public var kind: Kind
        public var detail: String

        public init(_ kind: Kind, _ detail: String) {
            self.kind = kind
            self.detail = detail
        }
    }

    /// The rules one answer was held to, and those it broke. An identify counts as checked
    /// for the rule its probe aims at (the probed speaker's); the rules for the other own
    /// speakers among its matches are applied too, and their violations counted.
    public struct Judgement: Sendable, Equatable {
        public var checked: Set<Kind> = []
        public var violations: [Violation] = []

        public init(checked: Set<Kind> = [], violations: [Violation] = []) {
            self.checked = checked
            self.violations = violations
        }

        mutating func require(_ kind: Kind, _ holds: Bool, _ detail: @autoclosure () -> String) {
            checked.insert(kind)
            if !holds { violations.append(Violation(kind, detail())) }
        }
    }

    public struct Match: Sendable, Equatable {
        public var speakerID: String
        public var score: Float

        public init(speakerID: String, score: Float) {
            self.speakerID = speakerID
            self.score = score
        }
    }

    /// What a verify was answered: not found, or a score and whether it was accepted.
    public enum VerifyAnswer: Sendable, Equatable {
        case notFound
        case scored(score: Float, accepted: Bool)
    }

    /// The last acknowledged state of a settled speaker; nil while a write of it is in doubt.
    enum Settled: Equatable {
        case live(version: UInt64, seq: Int)
        /// Deleted, or never written: the store owes no live profile.
        case absent
    }

    static func settled(_ ledger: WriteLedger, _ speaker: String) -> Settled? {
        guard let entry = ledger.speakers[speaker] else { return .absent }
        guard !entry.inDoubt else { return nil }
        switch entry.acknowledged {
        case .live(let version, let seq)?: return .live(version: version, seq: seq)
        case .gone?, nil: return .absent
        }
    }

    /// An identify by `client` whose probe was write `seq` of its own speaker `speaker`,
    /// answered with `matches` (best first).
    public static func identify(
        _ ledger: WriteLedger, client: Int, speaker: String, seq: Int, matches: [Match]
    ) -> Judgement {
        var judgement = Judgement()
        let own = matches.filter { ChaosContent.client(ofSpeaker: $0.speakerID) == client }
        func describe(_ match: Match?) -> String {
            match.map { "\($0.speakerID) at \(score($0.score))" } ?? "no match"
        }
        // What the probe aims at: the probed speaker's rule (counted as checked).
        switch settled(ledger, speaker) {
        case .live(let version, let acknowledgedSeq)? where acknowledgedSeq == seq:
            let first = matches.first
            judgement.require(.identifyLiveFirst, first?.speakerID == speaker && first!.score > sameContentScore,
                              "probe \(speaker) #\(seq) (acknowledged v\(version)): first match \(describe(first))")
        case .live?: judgement.checked.insert(.identifyNoStale)
        case .absent?: judgement.checked.insert(.identifyNoDeleted)
        case nil: break
        }
        // Every own match, probed or not, is held to the speaker's state.
        for match in own {
            switch settled(ledger, match.speakerID) {
            case .absent?:
                judgement.require(.identifyNoDeleted, false,
                                  "probe \(speaker) #\(seq): matched \(describe(match)), \(absence(ledger, match.speakerID))")
            case .live(let version, let acknowledgedSeq)?:
                let sameContent = match.speakerID == speaker && acknowledgedSeq == seq
                if !sameContent && match.score > sameContentScore {
                    judgement.require(.identifyNoStale, false,
                                      "probe \(speaker) #\(seq): matched \(describe(match)), acknowledged #\(acknowledgedSeq) v\(version)")
                }
            case nil:
                break
            }
        }
        return judgement
    }

    /// A verify of own speaker `speaker` with its write `seq` as the probe.
    public static func verify(_ ledger: WriteLedger, speaker: String, seq: Int, answer: VerifyAnswer) -> Judgement {
        var judgement = Judgement()
        switch settled(ledger, speaker) {
        case nil:
            break
        case .absent?:
            if case .scored(let score, _) = answer {
                judgement.require(.verifyDeletedNotFound, false, "\(speaker) #\(seq): answered \(Self.score(score)), \(absence(ledger, speaker))")
            } else {
                judgement.checked.insert(.verifyDeletedNotFound)
            }
        case .live(let version, let acknowledgedSeq)?:
            let owed = "acknowledged #\(acknowledgedSeq) v\(version)"
            switch answer {
            case .notFound:
                judgement.require(acknowledgedSeq == seq ? .verifyLiveAccepted : .verifyLiveOtherContent, false,
                                  "\(speaker) #\(seq): not found, \(owed)")
            case .scored(let score, let accepted) where acknowledgedSeq == seq:
                judgement.require(.verifyLiveAccepted, accepted && score > sameContentScore,
                                  "\(speaker) #\(seq): \(accepted ? "accepted" : "rejected") at \(Self.score(score)), \(owed)")
            case .scored(let score, _):
                judgement.require(.verifyLiveOtherContent, score <= sameContentScore,
                                  "\(speaker) #\(seq): \(Self.score(score)) although \(owed)")
            }
        }
        return judgement
    }

    /// A get of own speaker `speaker`: `row` is the profile it answered (nil: not found).
    public static func get(_ ledger: WriteLedger, speaker: String, row: ObservedRow?, dimension: Int) -> Judgement {
        var judgement = Judgement()
        let entry = ledger.speakers[speaker] ?? WriteLedger.Speaker()
        if let row {
            var kind = Kind.getAcknowledged
            if case .live? = entry.acknowledged {} else { kind = .getDeletedNotFound }
            if case .lost(let why) = ledger.verdict(speaker, row: row, dimension: dimension) {
                judgement.require(kind, false, "\(speaker): answered v\(row.version) '\(row.metadata)'; \(why)")
            } else {
                judgement.checked.insert(kind)
            }
            return judgement
        }
        switch entry.acknowledged {
        case .live(let version, let seq)?:
            // Not found is a delete of it that may have landed, and only that.
            if entry.deleteInDoubt { break }
            judgement.require(.getAcknowledged, false, "\(speaker): not found, acknowledged #\(seq) v\(version)")
        case .gone?, nil:
            judgement.checked.insert(.getDeletedNotFound)
        }
        return judgement
    }

    /// Why a speaker owes no live profile, for a message.
    static func absence(_ ledger: WriteLedger, _ speaker: String) -> String {
        switch ledger.acknowledged(speaker) {
        case .gone(let version, _)?: "its acknowledged delete (v\(version)) was the last write"
        default: "never written"
        }
    }

    static func score(_ value: Float) -> String {
        ChaosFormat.decimal(Double(value), 4)
    }
}

extension ChaosContent {
    /// The client that owns chaos speaker `id` (`chaos-<client>-<n>`).
    public static func client(ofSpeaker id: String) -> Int? {
        let parts = id.split(separator: "-")
        guard parts.count == 3, parts[0] == "chaos", let client = Int(parts[1]), Int(parts[2]) != nil else { return nil }
        return client
    }
}
