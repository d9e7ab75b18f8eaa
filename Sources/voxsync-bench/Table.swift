import Foundation

/// A plain-text table in Markdown form, so the output pastes straight into the README.
struct Table {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: String...) { self.header = header }

    mutating func add(_ cells: String...) { rows.append(cells) }

    func render() -> String {
        let widths = header.indices.map { column in
            ([header] + rows).map { $0[column].count }.max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }
}

/// Latency samples in nanoseconds; percentiles by sorting (runs are at most a few 100 000).
struct LatencySamples {
    private(set) var nanoseconds: [UInt64] = []

    init(capacity: Int) { nanoseconds.reserveCapacity(capacity) }

    mutating func record(_ value: UInt64) { nanoseconds.append(value) }
    mutating func merge(_ other: LatencySamples) { nanoseconds += other.nanoseconds }

    func percentileMicroseconds(_ p: Double) -> Double {
        guard !nanoseconds.isEmpty else { return .nan }
        let sorted = nanoseconds.sorted()
        let index = min(sorted.count - 1, Int((Double(sorted.count) * p / 100).rounded(.down)))
        return Double(sorted[index]) / 1000
    }
}

func format(_ value: Double, decimals: Int = 0) -> String {
    guard value.isFinite else { return "-" }
    var text = String(Int(value.rounded()))
    if decimals > 0 {
        let scale = pow(10, Double(decimals))
        let rounded = (value * scale).rounded() / scale
        text = "\(rounded)"
    }
    return text
}

#if canImport(Glibc)
import Glibc
#endif

/// Monotonic nanoseconds, cheap enough to read around every request.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Standard error as a `print(_:to:)` target, for progress lines that stay out of the tables.
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { FileHandle.standardError.write(Data(string.utf8)) }
}
nonisolated(unsafe) var standardError = StandardError()
