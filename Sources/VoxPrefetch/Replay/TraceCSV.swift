import Foundation
import VoxCore

/// A recorded trace for `voxsync-bench prefetch --trace`: CSV lines `timestamp,speaker`, the
/// timestamp in unix seconds (a fraction allowed), an optional header line `timestamp,speaker`,
/// blank lines and lines starting with `#` skipped. Rows need not be ordered (they are sorted).
public enum TraceCSV {
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// At most this many rows (about 30 bytes each: 10 million is a few hundred MiB of trace).
    public static let maximumRows = 10_000_000

    /// Speaker ids are checked as the cache checks them (`rules`; the dimension is unused).
    public static func parse(_ text: String, rules: ProfileRules = ProfileRules(dimension: 1)) throws -> [TraceAccess] {
        var accesses: [TraceAccess] = []
        var number = 0
        // Split on any line break: "\r\n" is one Character in Swift, not a "\n" after a "\r".
        // A byte-order mark (spreadsheets write one) is not part of the first field.
        let text = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        for row in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            number += 1
            if row.allSatisfy({ $0 == " " }) || row.hasPrefix("#") { continue }
            if number == 1, row.lowercased().replacingOccurrences(of: " ", with: "") == "timestamp,speaker" { continue }
            let fields = row.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == 2 else {
                throw ParseError(line: number, reason: "expected 2 fields 'timestamp,speaker', found \(fields.count)")
            }
            let stamp = fields[0].trimmingCharacters(in: .whitespaces)
            guard let seconds = Double(stamp), seconds.isFinite, (0...4_102_444_800).contains(seconds) else {
                throw ParseError(line: number, reason: "timestamp '\(stamp.prefix(40))' is not unix seconds between 1970 and 2100")
            }
            let speaker = fields[1].trimmingCharacters(in: .whitespaces)
            do {
                try rules.checkSpeakerID(speaker)
            } catch {
                throw ParseError(line: number, reason: "speaker: \(error)")
            }
            guard accesses.count < maximumRows else {
                throw ParseError(line: number, reason: "more than \(maximumRows) rows; replay a slice of the trace")
            }
            accesses.append(TraceAccess(time: Int64((seconds * 1000).rounded()), speaker: speaker))
        }
        accesses.sort { $0.time < $1.time }
        return accesses
    }
}
