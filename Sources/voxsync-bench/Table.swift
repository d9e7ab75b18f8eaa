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

/// Measurements taken in alternating rounds — each server·client pair once per round, in turn
/// — so that this shared VM's slow spells (runs move by ±30 %) fall on all of them alike. The
/// row shown for a pair is its median round by requests/s (with that round's percentiles);
/// the last column lists every round.
struct Rounds {
    struct Measurement {
        var requestsPerSecond: Double
        var p50: Double
        var p99: Double
    }

    private var order: [String] = []
    private var measured: [String: [Measurement]] = [:]

    /// A measurement of `label` (e.g. "redis-server · redis-benchmark") at `clients`.
    mutating func add(_ label: String, clients: Int, _ measurement: Measurement) {
        let key = "\(label)\t\(clients)"
        if measured[key] == nil { order.append(key) }
        measured[key, default: []].append(measurement)
    }

    mutating func add(_ label: String, clients: Int, samples: LatencySamples, seconds: Double) {
        add(label, clients: clients, Measurement(
            requestsPerSecond: Double(samples.nanoseconds.count) / seconds,
            p50: samples.percentileMicroseconds(50), p99: samples.percentileMicroseconds(99)))
    }

    /// One row per pair, in the order first measured.
    func table() -> Table {
        var table = Table("server · client", "clients", "requests/s", "p50 µs", "p99 µs", "rounds (requests/s)")
        for key in order {
            let parts = key.split(separator: "\t").map(String.init)
            let all = measured[key]!
            let median = all.sorted { $0.requestsPerSecond < $1.requestsPerSecond }[all.count / 2]
            table.add(parts[0], parts[1], format(median.requestsPerSecond), format(median.p50), format(median.p99),
                      all.map { format($0.requestsPerSecond) }.joined(separator: ", "))
        }
        return table
    }
}
