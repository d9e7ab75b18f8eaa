import Testing
import VoxCore

/// The sync worker's export pacing, with a clock of plain numbers.
@Suite struct ExportPacingTests {
    @Test func atMostOneExportPerPeriodAndTheWaitShortensToTheNextOne() {
        var pacing = ExportPacing<ContinuousClock.Instant>(period: .seconds(1))
        let start = ContinuousClock.now
        func at(_ milliseconds: Int) -> ContinuousClock.Instant { start.advanced(by: .milliseconds(milliseconds)) }

        let first = pacing.afterCycle(at: at(0), delay: .seconds(5))
        #expect(first.export && first.wait == .seconds(5), "the first cycle exports and waits as asked")
        // Cycles driven by nudges every 10 ms: no export until the period has passed, and
        // never a wait beyond the export that is due.
        let nudged = pacing.afterCycle(at: at(10), delay: .seconds(5))
        #expect(!nudged.export && nudged.wait == .milliseconds(990))
        let short = pacing.afterCycle(at: at(600), delay: .milliseconds(100))
        #expect(!short.export && short.wait == .milliseconds(100), "a shorter wait asked for stays")
        let due = pacing.afterCycle(at: at(1000), delay: .seconds(5))
        #expect(due.export && due.wait == .seconds(5))
        let exports = (1...100).map { pacing.afterCycle(at: at(1000 + $0 * 10), delay: .zero).export }
        #expect(exports.filter { $0 }.count == 1, "one export in the next second of 100 cycles")
    }

    @Test func aClockThatWentBackExportsRatherThanWaitingForever() {
        var pacing = ExportPacing<ContinuousClock.Instant>(period: .seconds(1))
        let start = ContinuousClock.now
        _ = pacing.afterCycle(at: start.advanced(by: .seconds(10)), delay: .seconds(1))
        #expect(pacing.afterCycle(at: start, delay: .seconds(1)).export)
    }
}
