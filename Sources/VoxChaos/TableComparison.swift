/// Compares two tables keyed by speaker id, as the audit compares PostgreSQL with SQLite.
public enum TableComparison {
    public struct Difference: Sendable, Equatable {
        public var speakerID: String
        public var what: String

        public init(speakerID: String, what: String) {
            self.speakerID = speakerID
            self.what = what
        }
    }

    /// Every speaker whose rows differ or that one side lacks; `describe` names a row in a
    /// message. Rows are compared with `==` (every field).
    public static func differences<Row: Equatable>(
        local: [String: Row], remote: [String: Row], describe: (Row) -> String
    ) -> [Difference] {
        Set(local.keys).union(remote.keys).sorted().compactMap { id in
            switch (local[id], remote[id]) {
            case (let l?, let r?) where l == r: nil
            case (let l?, let r?): Difference(speakerID: id, what: "SQLite \(describe(l)), PostgreSQL \(describe(r))")
            case (let l?, nil): Difference(speakerID: id, what: "only in SQLite: \(describe(l))")
            case (nil, let r?): Difference(speakerID: id, what: "only in PostgreSQL: \(describe(r))")
            case (nil, nil): nil
            }
        }
    }
}

/// Processes of a service found in /proc, judged for orphans.
public enum OrphanCheck {
    public struct Process: Sendable, Equatable {
        public var pid: Int32
        public var parent: Int32
        /// /proc state letter: R, S, D, T (stopped), Z (zombie), ...
        public var state: Character

        public init(pid: Int32, parent: Int32, state: Character) {
            self.pid = pid
            self.parent = parent
            self.state = state
        }
    }

    /// Workers (processes started by `supervisor`, found by its pid in their environment) that
    /// still run but whose parent is no longer the supervisor. A zombie (state Z) has ended and
    /// only waits to be reaped — in a container whose PID 1 reaps nothing it waits forever —
    /// so it is dead, not orphaned.
    public static func orphans(_ workers: [Process], supervisor: Int32, supervisorAlive: Bool) -> [Process] {
        workers.filter { process in
            guard process.state != "Z", process.state != "X" else { return false }
            return !supervisorAlive || process.parent != supervisor
        }
    }
}
