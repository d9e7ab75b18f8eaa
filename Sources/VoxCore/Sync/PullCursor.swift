/// Where the sync worker's pull of remote changes stands — built so that no change is missed
/// when concurrent writers commit out of order.
///
/// Every remote row carries the id of the PostgreSQL transaction that last wrote it (set by a
/// trigger, so any writer is covered). A sequence or timestamp cursor can skip a row: writer A
/// takes number 10, writer B takes 11 and commits first, a pull sees 11 and moves past 10 before
/// A commits. Transaction ids have the same problem, but PostgreSQL says which ones might still
/// be running: every transaction below `pg_snapshot_xmin(pg_current_snapshot())` — the
/// *horizon* — has ended. So a pull reads only rows whose transaction id lies in
/// `[complete, horizon)`, a window that no running transaction can add to, and afterwards
/// `complete = horizon`. A row rewritten later gets a new, higher id and is read again.
///
/// Large windows are read in pages ordered by `(transaction id, speaker id)`; the position in
/// the window is part of the cursor, so a restart resumes inside it. The cursor is persisted
/// after every applied page.
public struct PullCursor: Sendable, Equatable {
    /// Every change by a transaction with an id below this has been applied.
    public private(set) var complete: Int64
    /// The horizon of the window being read, if one is open.
    public private(set) var horizon: Int64?
    /// The last row applied in the open window.
    public private(set) var after: (transaction: Int64, speakerID: String)?

    public init(complete: Int64 = 0, horizon: Int64? = nil, after: (transaction: Int64, speakerID: String)? = nil) {
        self.complete = complete
        self.horizon = horizon
        self.after = horizon == nil ? nil : after
    }

    /// The page to read next, or nil when the window is empty. `observedHorizon` is the
    /// server's current horizon; it is used only when no window is open.
    public mutating func nextPage(observedHorizon: Int64) -> Page? {
        if horizon == nil {
            // Transaction ids never go backwards on one server: a horizon below what was
            // already read means another server (a restore, a failover to a fresh cluster).
            // Read everything again; last-writer-wins makes that safe.
            if observedHorizon < complete { complete = 0 }
            guard observedHorizon > complete else { return nil }
            horizon = observedHorizon
            after = nil
        }
        return Page(from: complete, below: horizon!, after: after)
    }

    /// A page was applied. `last` is its last row; `full` says it held as many rows as asked
    /// for (so more may follow in the window).
    public mutating func pageApplied(last: (transaction: Int64, speakerID: String)?, full: Bool) {
        guard let horizon else { return }
        if full, let last {
            after = last
        } else {
            complete = horizon
            self.horizon = nil
            after = nil
        }
    }

    public struct Page: Sendable, Equatable {
        /// Rows with `from <= transaction < below`…
        public var from: Int64
        public var below: Int64
        /// …and `(transaction, speaker_id) > after`, when set.
        public var after: (transaction: Int64, speakerID: String)?

        public init(from: Int64, below: Int64, after: (transaction: Int64, speakerID: String)?) {
            self.from = from
            self.below = below
            self.after = after
        }

        public static func == (lhs: Page, rhs: Page) -> Bool {
            lhs.from == rhs.from && lhs.below == rhs.below && lhs.after?.transaction == rhs.after?.transaction && lhs.after?.speakerID == rhs.after?.speakerID
        }
    }

    public static func == (lhs: PullCursor, rhs: PullCursor) -> Bool {
        lhs.complete == rhs.complete && lhs.horizon == rhs.horizon && lhs.after?.transaction == rhs.after?.transaction && lhs.after?.speakerID == rhs.after?.speakerID
    }
}
