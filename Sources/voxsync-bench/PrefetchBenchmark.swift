import ArgumentParser
import Foundation
import VoxCore
import VoxPrefetch

/// Replays a trace in simulated time through the cache's eviction policy and the real
/// predictor, and prints hit rates without prefetch (LRU, SIEVE), with prefetch, and Belady's
/// optimum for a demand cache, at cache sizes of 1 %, 5 % and 10 % of the speakers.
struct PrefetchBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prefetch",
        abstract: "Replay an access trace (CSV or a generated office) with and without the prefetcher.")

    @Option(help: "CSV trace of 'timestamp,speaker' (unix seconds); without it an office workload is generated.")
    var trace: String?

    @Option(help: "Generated office: speakers (10-100000).")
    var speakers = 1000

    @Option(help: "Generated office: days (2-365), starting on a Monday.")
    var days = 28

    @Option(help: "Generated office: random seed.")
    var seed: UInt64 = 42

    @Option(name: .customLong("warmup-days"), help: "Days at the start that train the predictor and warm the cache but are not counted (0-364).")
    var warmupDays = 7

    @Option(help: "Cache sizes, percent of the speakers in the trace, comma separated (each 0.01-100).")
    var sizes = "1,5,10"

    @Option(help: "Seconds between prefetch runs (prefetch_interval_ms / 1000).")
    var interval = 60

    @Option(help: "Look-ahead window in seconds (prefetch_window_ms / 1000).")
    var window = 300

    @Option(help: "Initial confidence threshold (0-1).")
    var threshold = 0.7

    @Flag(name: .customLong("fixed-threshold"), help: "Keep the threshold fixed instead of adapting it to precision.")
    var fixedThreshold = false

    @Option(name: .customLong("max-per-interval"), help: "prefetch_max_per_interval (a tenth of the cache caps it too).")
    var maxPerInterval = 100

    @Option(name: .customLong("write-trace"), help: "Also write the trace replayed as CSV ('timestamp,speaker') to this file.")
    var writeTrace: String?

    func validate() throws {
        guard (10...100_000).contains(speakers) else { throw ValidationError("--speakers must be 10-100000; got \(speakers)") }
        guard (2...365).contains(days) else { throw ValidationError("--days must be 2-365; got \(days)") }
        guard (0...364).contains(warmupDays) else { throw ValidationError("--warmup-days must be 0-364; got \(warmupDays)") }
        guard trace != nil || warmupDays < days else { throw ValidationError("--warmup-days (\(warmupDays)) must be fewer than --days (\(days))") }
        guard (10...3600).contains(interval) else { throw ValidationError("--interval must be 10-3600 seconds; got \(interval)") }
        guard (1...86_400).contains(window) else { throw ValidationError("--window must be 1-86400 seconds; got \(window)") }
        guard (0...1).contains(threshold) else { throw ValidationError("--threshold must be between 0 and 1; got \(threshold)") }
        guard maxPerInterval >= 1 else { throw ValidationError("--max-per-interval must be at least 1; got \(maxPerInterval)") }
        _ = try percentages()
    }

    private func percentages() throws -> [Double] {
        let values = sizes.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0.map { (0.01...100).contains($0) } ?? false }) else {
            throw ValidationError("--sizes must be percentages between 0.01 and 100, comma separated; got '\(sizes)'")
        }
        return values.map { $0! }
    }

    func run() throws {
        let started = ContinuousClock.now
        let accesses: [TraceAccess]
        let source: String
        if let trace {
            guard let text = try? String(contentsOfFile: trace, encoding: .utf8) else {
                throw ValidationError("cannot read --trace \(trace) (is it a UTF-8 text file?)")
            }
            do { accesses = try TraceCSV.parse(text) } catch { throw ValidationError("--trace \(trace): \(error)") }
            guard let first = accesses.first, let last = accesses.last else { throw ValidationError("--trace \(trace) has no rows") }
            guard first.time + Int64(warmupDays) * 86_400_000 < last.time else {
                throw ValidationError("--trace spans less than --warmup-days (\(warmupDays)); lower --warmup-days")
            }
            source = "trace \(trace)"
        } else {
            var office = OfficeWorkload.Configuration()
            office.speakers = speakers
            office.days = days
            office.seed = seed
            accesses = OfficeWorkload(configuration: office).generate()
            source = "generated office: \(speakers) speakers, \(days) days from Monday, seed \(seed)"
        }
        if let writeTrace {
            var csv = "timestamp,speaker\n"
            csv.reserveCapacity(accesses.count * 28)
            for access in accesses {
                csv += String(access.time / 1000) + "." + String(1000 + access.time % 1000).dropFirst() + "," + access.speaker + "\n"
            }
            do { try csv.write(toFile: writeTrace, atomically: true, encoding: .utf8) } catch {
                throw ValidationError("cannot write --write-trace \(writeTrace): \(error)")
            }
        }
        let measureFrom = accesses[0].time - accesses[0].time % 86_400_000 + Int64(warmupDays) * 86_400_000
        let distinct = Set(accesses.lazy.map(\.speaker)).count
        let replay = TraceReplay(trace: accesses, measureFrom: measureFrom)
        let counted = accesses.lazy.filter { $0.time >= measureFrom }.count

        var settings = TraceReplay.Prefetch()
        settings.intervalMilliseconds = Int64(interval) * 1000
        settings.windowMilliseconds = Int64(window) * 1000
        settings.threshold = AdaptiveThreshold.Configuration(initial: threshold, adaptive: !fixedThreshold)
        settings.maxPerInterval = maxPerInterval

        var table = Table(
            "cache", "LRU", "SIEVE", "SIEVE + prefetch", "gain", "Belady (demand optimum)", "prefetch − Belady",
            "precision", "prefetched", "hits added", "threshold at end")
        for percent in try percentages() {
            let capacity = max(1, Int((Double(distinct) * percent / 100).rounded()))
            print("replaying at \(capacity) entries…", to: &standardError)
            let lru = replay.run(LRUCachePolicy.self, capacity: capacity)
            let sieve = replay.run(SieveCachePolicy<String>.self, capacity: capacity)
            let prefetched = replay.run(SieveCachePolicy<String>.self, capacity: capacity, prefetch: settings)
            let optimum = replay.belady(capacity: capacity)
            func rate(_ value: Double) -> String { String(format: "%.1f %%", value * 100) }
            func points(_ value: Double) -> String { String(format: "%+.1f pt", value * 100) }
            table.add(
                "\(format(percent, decimals: 2)) % (\(capacity))", rate(lru.hitRate), rate(sieve.hitRate), rate(prefetched.hitRate),
                points(prefetched.hitRate - sieve.hitRate), rate(optimum.hitRate), points(prefetched.hitRate - optimum.hitRate),
                prefetched.precision.map { String(format: "%.3f", $0) } ?? "-", "\(prefetched.prefetched)", "\(prefetched.used)",
                prefetched.finalThreshold.map { String(format: "%.2f", $0) } ?? "-")
        }
        print("Prefetch replay — \(source); \(accesses.count) reads of \(distinct) speakers, \(counted) counted after \(warmupDays) warm-up days")
        print("interval \(interval) s, window \(window) s, threshold \(threshold)\(fixedThreshold ? " (fixed)" : " (adaptive 0.5-0.95, target precision 0.8)"), at most min(\(maxPerInterval), cache/10) per interval")
        print()
        print(table.render())
        print()
        print("gain: hit-rate points over SIEVE alone (the cache's own policy). Belady: the best any demand cache of that size can do on this trace; a prefetching cache can pass it, because it loads before the first read. Replayed in \(format((ContinuousClock.now - started) / .milliseconds(1) / 1000, decimals: 1)) s.")
    }
}
