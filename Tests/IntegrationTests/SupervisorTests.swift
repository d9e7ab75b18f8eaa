import Foundation
import Testing
import VoxClient
import VoxCore
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// The process model, with real processes: a real voxsyncd, real workers, real signals.
/// Serialized: each test runs five processes, and this machine has two cores.
extension ServiceTests {
    @Suite(.serialized) struct SupervisorTests {
        static let roles: [WorkerRole] = [.cache, .sync, .metrics, .prefetch]

        /// Seconds of silence the supervisor logged when it killed a hung worker under a
        /// 0.8 s limit: "no heartbeat answer for 0.912 seconds (limit 0.8 seconds)".
        static func heartbeatSilence(in log: String) -> Double? {
            for line in log.split(separator: "\n") where line.contains("(limit 0.8 seconds)") {
                guard let start = line.range(of: "no heartbeat answer for ")?.upperBound,
                      let end = line[start...].range(of: " seconds")?.lowerBound else { continue }
                return Double(line[start..<end])
            }
            return nil
        }

        @Test func killingEachWorkerInTurnRestartsOnlyThatOne() async throws {
            let service = try await ServiceProcess.started()
            defer { service.cleanUp() }
            for (index, role) in Self.roles.enumerated() {
                let before = try await service.status()
                let victim = service.worker(role, in: before).pid
                kill(victim, SIGKILL)
                try await eventually("\(role) replaced after SIGKILL") {
                    let worker = service.worker(role, in: try await service.status())
                    return worker.pid != victim && worker.pid != 0 && worker.state == "ready"
                }
                let after = try await service.status()
                let replaced = service.worker(role, in: after)
                #expect(replaced.restarts == 1)
                #expect(replaced.lastExitReason == "killed by SIGKILL")
                #expect(!isAlive(victim))
                for other in Self.roles where other != role {
                    #expect(service.worker(other, in: after).pid == service.worker(other, in: before).pid, "\(other) kept its pid")
                }
                #expect(after.workers.map(\.restarts).reduce(0, +) == UInt32(index + 1))
            }
            let client = service.client()
            defer { client.close() }
            try await client.ping()
        }

        @Test func aStoppedWorkerIsKilledAndReplacedWithinTheHeartbeatTimeout() async throws {
            let service = try await ServiceProcess.started(settings: ["heartbeat_timeout_ms=800"])
            defer { service.cleanUp() }
            let victim = service.worker(.sync, in: try await service.status()).pid
            kill(victim, SIGSTOP)
            // Noticed after 800 ms without an answer (the supervisor's log says so below); the
            // deadline only bounds how long a loaded machine may take to start the replacement.
            try await eventually(timeout: .seconds(15), "the SIGSTOPped sync worker replaced") {
                let worker = service.worker(.sync, in: try await service.status())
                return worker.pid != victim && worker.state == "ready"
            }
            #expect(service.worker(.sync, in: try await service.status()).lastExitReason == "killed by SIGKILL")
            #expect(!isAlive(victim))
            #expect(service.log.contains("killing an unresponsive worker"))
            // Killed soon after the limit by the supervisor's own clock (the test task's delays
            // do not count): "no heartbeat answer for 0.9… seconds (limit 0.8 seconds)".
            #expect(Self.heartbeatSilence(in: service.log).map { $0 < 3 } == true, "killed for the configured 0.8 s timeout, within 3 s:\n\(service.log)")
        }

        @Test func aClientConnectingWhileTheCacheWorkerIsDownIsAnsweredNotRefused() async throws {
            // A long first backoff keeps the cache worker down while the client connects.
            let service = try await ServiceProcess.started(settings: ["restart_initial_ms=5000"])
            defer { service.cleanUp() }
            let victim = service.worker(.cache, in: try await service.status()).pid
            kill(victim, SIGKILL)
            try await eventually("the cache worker is down") {
                service.worker(.cache, in: try await service.status()).state == "backoff"
            }
            // Connecting gets only 50 ms of retries: if the socket refused connections the call
            // would fail. The listening socket lives in the supervisor, so connect() succeeds into
            // its backlog and the handshake is answered by the next cache worker.
            let client = service.client { $0.connectTimeout = .milliseconds(50); $0.requestTimeout = .seconds(30) }
            defer { client.close() }
            let hello = try await client.serverHello()
            #expect(hello.serverName.contains("cache"))
            try await client.ping()
            #expect(service.worker(.cache, in: try await service.status()).pid != victim)
        }

        @Test func killingTheSupervisorTakesEveryWorkerWithIt() async throws {
            let service = try await ServiceProcess.started()
            defer { service.cleanUp() }
            let workers = try await service.status().workers.map(\.pid)
            #expect(workers.count == 4 && workers.allSatisfy(isAlive))
            service.signal(SIGKILL)
            // They die with it (PR_SET_PDEATHSIG), not after a timeout: the deadline is slack.
            try await eventually(timeout: .seconds(5), "every worker gone after the supervisor's SIGKILL") {
                !workers.contains(where: isAlive)
            }
        }

        /// voxsyncd started in the background by a shell that then waits, as a harness starts
        /// it: SIGKILL of the shell orphans it. Returns the shell's pid, the supervisor's and its
        /// workers' once every worker is ready — or, without `waitUntilReady`, as soon as the
        /// supervisor has bound the client socket (it has read its parent's pid by then), with
        /// no workers. (`posix_spawn`, not Foundation's `Process`, whose `waitUntilExit` was seen
        /// to spin forever on a shell that left a daemon behind.)
        static func startedByAShell(
            dataDirectory: String, logPath: String, exitWithParent: Bool, waitUntilReady: Bool = true
        ) async throws -> (shell: pid_t, supervisor: Int32, workers: [Int32]) {
            let pidFile = dataDirectory + ".pid"
            defer { try? FileManager.default.removeItem(atPath: pidFile) }
            let arguments = ["--data-dir", dataDirectory] + (exitWithParent ? ["--exit-with-parent"] : [])
                + ServiceProcess.testSettings.flatMap { ["--set", $0] }
            let shell = try spawnCommand(
                ["/bin/sh", "-c", "\"$0\" \"$@\" >>\(logPath) 2>&1 & echo $! >\(pidFile); wait", binDirectory + "/voxsyncd"] + arguments)
            var supervisor: Int32 = 0
            var workers: [Int32] = []
            do {
                try await eventually("the shell to write voxsyncd's pid") {
                    let text = (try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? ""
                    supervisor = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                    return supervisor > 0
                }
                guard waitUntilReady else {
                    try await eventually(timeout: .seconds(30), "the client socket bound") {
                        FileManager.default.fileExists(atPath: dataDirectory + "/run/voxsync.sock")
                    }
                    return (shell, supervisor, [])
                }
                try await eventually(timeout: .seconds(30), "every worker ready") {
                    guard let status = try? await supervisorStatus(controlPath: dataDirectory + "/run/control.sock") else { return false }
                    workers = status.workers.map(\.pid)
                    return status.workers.count == 4 && status.workers.allSatisfy { $0.state == "ready" }
                }
            } catch {
                if supervisor > 0 { kill(supervisor, SIGKILL) }  // its workers die with it
                kill(shell, SIGKILL)
                _ = waitForExit(shell)
                try? FileManager.default.removeItem(atPath: dataDirectory)
                try? FileManager.default.removeItem(atPath: logPath)
                throw error
            }
            return (shell, supervisor, workers)
        }

        @Test(arguments: [true, false])
        func withExitWithParentTheServiceStopsWhenWhatStartedItIsKilled(exitWithParent: Bool) async throws {
            let dataDirectory = "/tmp/vxi-" + String(UUID().uuidString.prefix(8))
            let logPath = dataDirectory + ".log"
            let (shell, supervisor, workers) = try await Self.startedByAShell(
                dataDirectory: dataDirectory, logPath: logPath, exitWithParent: exitWithParent)
            defer {
                for pid in [supervisor] + workers where isAlive(pid) { kill(pid, SIGKILL) }
                try? FileManager.default.removeItem(atPath: dataDirectory)
                try? FileManager.default.removeItem(atPath: logPath)
            }
            func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
            #expect(isAlive(supervisor) && workers.allSatisfy(isAlive))

            kill(shell, SIGKILL)
            #expect(waitForExit(shell) == 128 + SIGKILL)
            if exitWithParent {
                // Noticed within 250 ms, then the graceful stop: workers in reverse order.
                try await Self.expectGracefulStopAfterItsParent(shell, dataDirectory: dataDirectory, logPath: logPath) {
                    !isAlive(supervisor) && !workers.contains(where: isAlive)
                }
            } else {
                // Without the flag an orphaned service goes on serving (as under nohup): six
                // of the flag's checks later it still answers.
                try await Task.sleep(for: .milliseconds(1500))
                let status = try await supervisorStatus(controlPath: dataDirectory + "/run/control.sock")
                #expect(status.workers.map(\.pid) == workers)
                #expect(isAlive(supervisor))
                #expect(!log().contains("has exited; stopping"))
            }
        }

        @Test func orphanedWhileStartingWithExitWithParentItStillStopsGracefully() async throws {
            let dataDirectory = "/tmp/vxi-" + String(UUID().uuidString.prefix(8))
            let logPath = dataDirectory + ".log"
            let (shell, supervisor, _) = try await Self.startedByAShell(
                dataDirectory: dataDirectory, logPath: logPath, exitWithParent: true, waitUntilReady: false)
            defer {
                if isAlive(supervisor) { kill(supervisor, SIGKILL) }  // its workers die with it
                try? FileManager.default.removeItem(atPath: dataDirectory)
                try? FileManager.default.removeItem(atPath: logPath)
            }
            // The workers are still starting; the stop may be asked before the service group
            // runs (the first check is 250 ms in), which keeps the request and stops at once.
            // "voxsyncd: stopped" is written once every worker has been stopped.
            kill(shell, SIGKILL)
            #expect(waitForExit(shell) == 128 + SIGKILL)
            try await Self.expectGracefulStopAfterItsParent(shell, dataDirectory: dataDirectory, logPath: logPath) {
                !isAlive(supervisor)
            }
        }

        /// After the SIGKILL of `shell`, which started a voxsyncd with `--exit-with-parent`: waits
        /// until `stopped` holds, then checks that the flag stopped it, gracefully.
        static func expectGracefulStopAfterItsParent(
            _ shell: pid_t, dataDirectory: String, logPath: String, stopped: () -> Bool
        ) async throws {
            func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
            do {
                try await eventually(timeout: .seconds(30), "the orphaned service to stop") { stopped() }
            } catch {
                Issue.record("voxsyncd's log:\n\(log())")
                throw error
            }
            #expect(log().contains("the process that started voxsyncd (pid \(shell)) has exited; stopping"), "\(log())")
            #expect(log().contains("voxsyncd: stopped"), "a graceful stop, not a kill:\n\(log())")
            #expect(!FileManager.default.fileExists(atPath: dataDirectory + "/run/voxsync.sock"), "client socket removed")
        }

        @Test func sigtermStopsCleanly() async throws {
            let service = try await ServiceProcess.started()
            defer { service.cleanUp() }
            let workers = try await service.status().workers.map(\.pid)
            let code = try await service.terminate()
            #expect(code == 0)
            #expect(!workers.contains(where: isAlive), "no orphans")
            #expect(!FileManager.default.fileExists(atPath: service.socketPath), "client socket removed")
            #expect(!FileManager.default.fileExists(atPath: service.controlPath), "control socket removed")
            #expect(service.log.contains("voxsyncd: stopped"))
            #expect(!service.log.contains("worker died"), "a graceful stop is not a crash:\n\(service.log)")
            // Reverse start order: prefetch stops first, cache last, each with a clean exit.
            let stops = service.log.split(separator: "\n").filter { $0.contains("worker stopped") }
            let order = stops.compactMap { line in ["prefetch", "metrics", "sync", "cache"].first { line.contains("worker=\($0)") } }
            #expect(order == ["prefetch", "metrics", "sync", "cache"], "\(stops)")
            #expect(stops.allSatisfy { $0.contains("exited with code 0") }, "\(stops)")
        }

        @Test func sigtermDuringStartUpIsNotHeldUpByAWorkerThatNeverGetsReady() async throws {
            let service = try ServiceProcess(settings: ["crash_at_start=metrics"])
            defer { service.cleanUp() }
            try await eventually("the supervisor answers status") { (try? await service.status()) != nil }
            // The worker that never gets ready is SIGKILLed after shutdown_timeout_ms (10 s in
            // tests): the test allows more than that.
            let code = try await service.terminate(timeout: .seconds(30))
            #expect(code == 0)
        }

        @Test func aWorkerThatCrashesAtStartIsFlappingWhileTheOthersServe() async throws {
            let service = try ServiceProcess(settings: [
                "crash_at_start=prefetch", "flap_threshold=3", "restart_initial_ms=20", "restart_max_ms=400",
            ])
            defer { service.cleanUp() }
            try await eventually(timeout: .seconds(15), "prefetch reported flapping\n\(service.log)") {
                guard let status = try? await service.status() else { return false }
                return service.worker(.prefetch, in: status).state == "flapping"
                    && [WorkerRole.cache, .sync, .metrics].allSatisfy { service.worker($0, in: status).state == "ready" }
            }
            let status = try await service.status()
            let prefetch = service.worker(.prefetch, in: status)
            #expect(prefetch.restarts >= 3)
            #expect(prefetch.lastExitReason == "exited with code 70")
            for role in [WorkerRole.cache, .sync, .metrics] {
                #expect(service.worker(role, in: status).state == "ready")
                #expect(service.worker(role, in: status).restarts == 0)
            }
            let client = service.client()
            defer { client.close() }
            try await client.ping()
            #expect(service.log.contains("worker is flapping"))
        }

        @Test func aSecondSupervisorOnTheSameDataDirectoryIsRefused() async throws {
            let first = try await ServiceProcess.started()
            defer { first.cleanUp() }
            let second = try ServiceProcess(dataDirectory: first.dataDirectory)
            try await eventually("the second supervisor to exit") { !second.process.isRunning }
            #expect(second.process.terminationStatus == 78)
            #expect(second.log.contains("is in use by another voxsyncd (pid \(first.process.processIdentifier)"))
            let client = first.client()
            defer { client.close() }
            try await client.ping()
            #expect(first.process.isRunning)
            try? FileManager.default.removeItem(atPath: second.logPath)
        }

        @Test func badConfigurationIsRefusedWithTheReason() async throws {
            let service = try ServiceProcess(settings: ["heartbeat_timeout_ms=soon"])
            defer { service.cleanUp() }
            try await eventually("voxsyncd to exit") { !service.process.isRunning }
            #expect(service.process.terminationStatus == 78)
            #expect(service.log.contains("heartbeat_timeout_ms must be a whole number of milliseconds; got 'soon'"))
        }

        @Test func aDataDirectoryThatCannotBeCreatedIsRefused() async throws {
            let service = try ServiceProcess(dataDirectory: "/proc/voxsync-cannot-exist")
            defer { try? FileManager.default.removeItem(atPath: service.logPath) }
            try await eventually("voxsyncd to exit") { !service.process.isRunning }
            #expect(service.process.terminationStatus == 78)
            #expect(service.log.contains("data_dir: cannot create /proc/voxsync-cannot-exist"), "\(service.log)")
        }

        @Test func runDirectoryAndSocketsArePrivate() async throws {
            let service = try await ServiceProcess.started()
            defer { service.cleanUp() }
            var info = stat()
            #expect(stat(service.dataDirectory + "/run", &info) == 0 && info.st_mode & 0o777 == 0o700)
            #expect(stat(service.socketPath, &info) == 0 && info.st_mode & 0o777 == 0o600)
            #expect(stat(service.controlPath, &info) == 0 && info.st_mode & 0o777 == 0o600)
        }
    }
}
