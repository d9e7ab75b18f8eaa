import Foundation
import Testing
import VoxTestSupport

/// `voxsync-bench chaos` end to end, as `launch/test` runs it: the debug build of the benchmark
/// against the debug voxsyncd, a PostgreSQL and a Redis of the test's own that the run stops and
/// starts. The benchmark's exit code is its audit: 0 only when no acknowledged write was lost,
/// every get, verify and identify of a client's own settled speakers (none with a write in
/// doubt) answered as its ledger requires, no idempotent request failed, PostgreSQL equals
/// SQLite, every worker is back, none orphaned, and the restart counts match the signals.
extension ServiceTests {
    @Suite(.serialized, .enabled(if: TestPostgres.available, "needs PostgreSQL's tools (launch/test sets VOXSYNC_TEST_POSTGRES_URL)"))
    struct ChaosIntegrationTests {
        @Test(.timeLimit(.minutes(3)))
        func aShortChaosRunLosesNothingAcknowledgedAndHealsEverything() async throws {
            let postgres = try PrivatePostgres()
            defer { postgres.destroy() }
            try await postgres.initialize()
            try await postgres.start()
            let redis = try RedisMirrorTests.PrivateRedis()
            defer { redis.destroy() }
            try await redis.start()

            let redisStart = "/usr/bin/redis-server --port 0 --unixsocket '\(redis.socket)' --unixsocketperm 700 --daemonize yes "
                + "--save '' --appendonly no --dir '\(redis.directory)' --pidfile '\(redis.directory)/redis.pid' >/dev/null "
                + "&& for i in $(seq 100); do [ -S '\(redis.socket)' ] && break; sleep 0.05; done"
            let output = "/tmp/vxchaos-" + String(UUID().uuidString.prefix(8)) + ".log"
            defer { try? FileManager.default.removeItem(atPath: output) }
            // About 20 s: 14 SIGKILLs (every worker at least 3 times, the schedule deals them in
            // rounds), 3 SIGSTOPs, one PostgreSQL and one Redis outage; a short pause between a
            // client's operations keeps the debug build's load from starving both cores.
            let arguments = [
                "chaos", "--daemon", binDirectory + "/voxsyncd", "--duration", "20", "--clients", "4", "--speakers-per-client", "40",
                "--kill-rate", "1.5s", "--stop-rate", "7s", "--op-interval-ms", "2", "--require-kills", "2", "--settle", "60",
                // A healthy worker answering late on a loaded CI machine must not be taken for a hang.
                "--heartbeat-timeout-ms", "3000",
                "--postgres-url", postgres.url.unredactedString,
                "--postgres-stop-cmd", "/bin/bash '\(PrivatePostgres.script)' stop '\(postgres.directory)'",
                "--postgres-start-cmd", "/bin/bash '\(PrivatePostgres.script)' start '\(postgres.directory)' \(postgres.port)",
                "--postgres-bounces", "1",
                "--redis-url", "unix://\(redis.socket)",
                "--redis-stop-cmd", "kill -9 $(cat '\(redis.directory)/redis.pid'); rm -f '\(redis.socket)'",
                "--redis-start-cmd", redisStart, "--redis-bounces", "1",
            ]
            let status = try await runCommand(["/bin/sh", "-c", "exec \"$0\" \"$@\" >'\(output)' 2>&1", binDirectory + "/voxsync-bench"] + arguments)
            let report = (try? String(contentsOfFile: output, encoding: .utf8)) ?? "(no output)"
            #expect(status == 0, "voxsync-bench chaos exited with \(status):\n\(report)")
            for check in ["acknowledged writes in SQLite", "answers as acknowledged", "PostgreSQL = SQLite", "idempotent requests answered", "restart counts = signals",
                          "every worker ready", "no orphaned worker", "outages carried out", "every worker SIGKILLed ≥ 2×"] {
                #expect(report.split(separator: "\n").contains { $0.hasPrefix("| \(check)") && $0.contains("| pass ") },
                        "\(check) did not pass:\n\(report)")
            }
            #expect(report.contains("| PostgreSQL | 1"), "PostgreSQL was bounced once:\n\(report)")
            // The strict answer rules were exercised, live and deleted speakers alike.
            for rule in ["identify: own live speaker first", "identify: no deleted own speaker", "verify: own live speaker accepted",
                         "verify: deleted own speaker not found", "get: acknowledged profile", "get: deleted own speaker"] {
                let row = report.split(separator: "\n").first { $0.hasPrefix("| \(rule)") }
                let checked = row.flatMap { Int($0.split(separator: "|").dropFirst().first?.trimmingCharacters(in: .whitespaces) ?? "") }
                #expect((checked ?? 0) > 0, "\(rule) was never checked:\n\(report)")
            }
        }
    }
}
