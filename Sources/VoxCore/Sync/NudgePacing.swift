/// When the cache worker nudges the sync worker after a commit ("the outbox has new rows"):
/// a commit after a quiet spell nudges at once; a commit within `interval` of the last nudge
/// leaves one owed, sent when the interval is up (the shell's timer, `timerFired`). Nudges are
/// always at least `interval` apart, and the sync worker hears of every commit at most
/// `interval` late while the timer runs on time, so write-behind starts no later than that;
/// a burst of enrolls (about 700 group commits a second at 32 clients) wakes it at most once
/// per interval instead of once per commit. (A nudge still owed when the cache worker stops is
/// not sent: the sync worker's periodic drain, every `sync_interval_ms`, and its drain when it
/// stops push those rows, as they push rows whose nudge a full queue dropped.)
///
/// Each nudge wakes the cache worker's home loop (it sends it) and the sync worker (it
/// answers it, and looks at the outbox): at a nudge per commit the sync worker alone spent
/// 3.6–5.1 µs of CPU per enroll (`/proc`, 2026-12-02), on two cores the enrolls' round trips
/// need. `CoalescedSend` already kept it to
/// one per round trip; this keeps it to one per interval. With 5 ms, enrolls at 32 clients,
/// 8 alternated pairs on 2026-12-02: ahead in 7, medians 25.2 against 21.9 k/s.
///
/// A pure value, like `ExportPacing`: the shell calls it under a lock, nudges when told, and
/// arms a timer when told.
public struct NudgePacing<Instant: InstantProtocol>: Sendable where Instant: Sendable, Instant.Duration == Swift.Duration {
    public enum Action: Equatable, Sendable {
        case none
        /// Nudge the sync worker now.
        case nudge
        /// Call `timerFired` after this long (one timer at a time: no other is armed).
        case armTimer(Duration)
    }

    /// Zero nudges after every commit.
    public let interval: Duration
    private var lastNudge: Instant?
    /// A commit since the last nudge that no nudge has covered yet.
    private var owed = false
    private var timerArmed = false

    public init(interval: Duration) {
        precondition(interval >= .zero, "a negative nudge interval")
        self.interval = interval
    }

    /// A commit that wrote something finished at `now`.
    public mutating func committed(at now: Instant) -> Action {
        if let lastNudge {
            let since = lastNudge.duration(to: now)
            if since >= .zero, since < interval {
                owed = true
                if timerArmed { return .none }
                timerArmed = true
                return .armTimer(interval - since)
            }
        }
        lastNudge = now
        owed = false  // this nudge covers any owed one
        return .nudge
    }

    /// The timer that `committed` (or this) armed ran out at `now`. A timer that ran late may
    /// find that a commit nudged meanwhile: then what is owed waits out that nudge's interval.
    public mutating func timerFired(at now: Instant) -> Action {
        timerArmed = false
        guard owed else { return .none }
        if let lastNudge {
            let since = lastNudge.duration(to: now)
            if since >= .zero, since < interval {
                timerArmed = true
                return .armTimer(interval - since)
            }
        }
        owed = false
        lastNudge = now
        return .nudge
    }
}
