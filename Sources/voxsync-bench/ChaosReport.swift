import Foundation
import VoxChaos
import VoxCore

/// The chaos run's report: Markdown tables, like the other benchmarks.
struct ChaosReport {
    let settings: ChaosRun.Settings
    let seed: UInt64
    let schedule: ChaosSchedule
    let tally: LoadTally
    let record: ChaosRecord
    let audit: ChaosAudit
    let chaosSeconds: Double
    /// Nil when the service did not settle.
    let convergeSeconds: Double?
    let daemonExitCode: Int32
    let leftovers: [Int32]
    let interrupted: Bool

    var finalChecks: [ChaosAudit.Check] {
        audit.checks + [
            .init(name: "voxsyncd stopped cleanly", passed: daemonExitCode == 0, detail: "SIGTERM at the end: exit code \(daemonExitCode)"),
            .init(name: "nothing left running", passed: leftovers.isEmpty,
                  detail: leftovers.isEmpty ? "no worker process of the run alive after voxsyncd stopped" : "still alive: \(leftovers)"),
        ]
    }

    var passed: Bool { finalChecks.allSatisfy(\.passed) }

    func render() -> String {
        var out: [String] = []
        out.append("## Chaos: \(settings.clients) clients for \(ChaosFormat.decimal(chaosSeconds, 1)) s\(interrupted ? " (interrupted)" : ""), seed \(seed)")
        out.append("")
        out.append("SIGKILL \(settings.killRate), SIGSTOP \(settings.stopRate) of \(settings.roles.joined(separator: ", ")); "
                   + "PostgreSQL \(outageText(schedule.postgresOutages, configured: settings.postgresURL != nil)); "
                   + "Redis \(outageText(schedule.redisOutages, configured: settings.redisURL != nil)); "
                   + "heartbeat timeout \(settings.heartbeatTimeoutMs) ms.")
        out.append("")

        var operations = Table("operation", "sent", "ok", "not found", "failed", "ops/s")
        var total = LoadTally.Counts()
        for operation in ChaosOperation.allCases {
            let counts = tally.operations[operation] ?? .init()
            total.sent += counts.sent; total.ok += counts.ok; total.notFound += counts.notFound; total.failed += counts.failed
            operations.add(operation == .put ? "put (enroll/update)" : operation.rawValue, "\(counts.sent)", "\(counts.ok)", "\(counts.notFound)",
                           "\(counts.failed)", ChaosFormat.decimal(Double(counts.ok + counts.notFound) / chaosSeconds, 0))
        }
        operations.add("all", "\(total.sent)", "\(total.ok)", "\(total.notFound)", "\(total.failed)",
                       ChaosFormat.decimal(Double(total.ok + total.notFound) / chaosSeconds, 0))
        out.append(operations.render())
        out.append("")

        if tally.failures.isEmpty {
            out.append("No client request failed.")
        } else {
            var failures = Table("operation: failure", "count", "counts against", "example")
            for (key, count) in tally.failures.sorted(by: { $0.key < $1.key }) {
                let isPut = key.hasPrefix("put:")
                failures.add(key, "\(count)", isPut ? "nothing (a write in flight when its worker died: unanswered, may or may not apply)" : "the audit",
                             String((tally.failureExamples[key] ?? "").prefix(90)))
            }
            out.append(failures.render())
        }
        out.append("")

        // What the answers about the clients' own speakers were held to (AnswerRules).
        var answers = Table("answer rule (own speakers, settled)", "checked", "violations", "example")
        for kind in AnswerRules.Kind.allCases {
            answers.add(kind.rawValue, "\(tally.answerChecks[kind] ?? 0)", "\(tally.answerViolations[kind] ?? 0)",
                        String((tally.violationExamples[kind]?.first ?? "").prefix(120)))
        }
        out.append(answers.render())
        out.append("")

        var workers = Table("worker", "SIGKILL", "SIGSTOP", "restarts expected", "status", "metrics",
                            "kill→ready p50 ms", "p99 ms", "stop→ready p50 ms", "p99 ms")
        for role in ServiceRole.startOrder.map(\.rawValue) {
            let restarts = audit.restarts[role]
            let samples = record.latencies[role] ?? [:]
            workers.add(role, "\(record.signals[role]?[.kill] ?? 0)", "\(record.signals[role]?[.stop] ?? 0)",
                        "\(restarts?.expected ?? 0)", "\(restarts?.status ?? 0)", restarts?.metrics.map(String.init) ?? "-",
                        milliseconds(samples[.kill], 50), milliseconds(samples[.kill], 99),
                        milliseconds(samples[.stop], 50), milliseconds(samples[.stop], 99))
        }
        out.append(workers.render())
        out.append("")
        if !record.outages.isEmpty {
            var outages = Table("server", "outage", "stop exit", "start exit", "down s")
            var numbers: [String: Int] = [:]
            for outage in record.outages {
                numbers[outage.server, default: 0] += 1
                outages.add(outage.server, "\(numbers[outage.server]!)", "\(outage.stopCode)", outage.startCode.map(String.init) ?? "-",
                            ChaosFormat.decimal(outage.downSeconds, 1))
            }
            out.append(outages.render())
            out.append("")
        }
        out.append("Time to converge after the chaos (every worker ready, outbox pushed to PostgreSQL, metrics caught up): "
                   + (convergeSeconds.map { ChaosFormat.decimal($0, 2) + " s" } ?? "did not converge"))
        if let sync = audit.syncSummary { out.append(sync) }
        if record.skipped > 0 { out.append("\(record.skipped) scheduled signals were skipped: their worker was not ready again before the run ended.") }
        out.append("")

        var checks = Table("audit", "result", "found")
        for check in finalChecks { checks.add(check.name, check.passed ? "pass" : "FAIL", check.detail) }
        out.append(checks.render())
        out.append("")
        out.append(passed ? "PASS: nothing acknowledged was lost and nothing was left broken." : "FAIL: see the audit above.")
        return out.joined(separator: "\n")
    }

    private func outageText(_ outages: [ChaosSchedule.Outage], configured: Bool) -> String {
        guard configured else { return "not configured" }
        guard let first = outages.first else { return "not bounced" }
        return "stopped \(outages.count)× for \(ChaosFormat.decimal(first.downFor.chaosSeconds, 1)) s"
    }

    private func milliseconds(_ samples: LatencySamples?, _ p: Double) -> String {
        guard let samples, !samples.nanoseconds.isEmpty else { return "-" }
        return ChaosFormat.decimal(samples.percentileMicroseconds(p) / 1000, 1)
    }
}
