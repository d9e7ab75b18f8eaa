import Testing
import VoxCore

/// The restart decisions, driven by made-up instants: no processes, no sleeping.
@Suite struct WorkerLifecycleStateMachineTests {
    typealias Machine = WorkerLifecycleStateMachine<ContinuousClock.Instant>
    let t0 = ContinuousClock.now

    func at(_ offset: Duration) -> ContinuousClock.Instant { t0 + offset }

    var policy: RestartPolicy {
        var policy = RestartPolicy()
        policy.backoff = ExponentialBackoff(initial: .milliseconds(10), maximum: .seconds(5), multiplier: 2, jitter: 0.5)
        policy.stableAfter = .seconds(10)
        policy.flapThreshold = 5
        policy.flapWindow = .seconds(60)
        policy.heartbeatInterval = .milliseconds(500)
        policy.heartbeatTimeout = .seconds(3)
        return policy
    }

    func running(readyAt ready: Duration = .milliseconds(20)) -> Machine {
        var machine = Machine(policy: policy)
        #expect(machine.start() == .spawn)
        machine.spawned(now: at(.zero))
        machine.becameReady(now: at(ready))
        return machine
    }

    @Test func startsOnceAndIsReadyOnlyWhenItSaysSo() {
        var machine = Machine(policy: policy)
        #expect(machine.start() == .spawn)
        machine.spawned(now: at(.zero))
        #expect(machine.stateName(now: at(.zero)) == "starting")
        #expect(machine.uptime(now: at(.seconds(1))) == .zero)
        machine.becameReady(now: at(.seconds(1)))
        #expect(machine.stateName(now: at(.seconds(1))) == "ready")
        #expect(machine.uptime(now: at(.seconds(3))) == .seconds(2))
        #expect(machine.start() == .none, "start is not repeated")
    }

    @Test func crashSchedulesARestartWithJitteredInitialBackoff() {
        var machine = running()
        let low = machine.exited(.signaled(signal: 9), now: at(.seconds(1)), random: 0)
        #expect(low == .scheduleRestart(after: .milliseconds(5)))
        #expect(machine.restarts == 1)
        #expect(machine.lastExitReason?.description == "killed by SIGKILL")
        #expect(machine.stateName(now: at(.seconds(1))) == "backoff")
    }

    @Test func restartFiresOnlyWhenTheBackoffIsOver() {
        var machine = running()
        _ = machine.exited(.exited(code: 1), now: at(.seconds(1)), random: 1)  // 10 ms
        #expect(machine.restartDue(now: at(.seconds(1) + .milliseconds(5))) == .none)
        #expect(machine.restartDue(now: at(.seconds(1) + .milliseconds(10))) == .spawn)
    }

    @Test func consecutiveFailuresDoubleTheDelayUpToTheCap() {
        var machine = running()
        var now = Duration.seconds(1)
        var delays: [Duration] = []
        for _ in 0..<4 {
            guard case .scheduleRestart(let delay) = machine.exited(.exited(code: 1), now: at(now), random: 1) else {
                Issue.record("expected a restart")
                return
            }
            delays.append(delay)
            now += delay
            #expect(machine.restartDue(now: at(now)) == .spawn)
            machine.spawned(now: at(now))
            now += .milliseconds(1)
        }
        #expect(delays == [.milliseconds(10), .milliseconds(20), .milliseconds(40), .milliseconds(80)])
    }

    @Test func stayingUpResetsTheBackoff() {
        var machine = running()
        _ = machine.exited(.exited(code: 1), now: at(.seconds(1)), random: 1)
        machine.spawned(now: at(.seconds(2)))
        _ = machine.exited(.exited(code: 1), now: at(.seconds(3)), random: 1)  // second failure: 20 ms
        machine.spawned(now: at(.seconds(4)))
        machine.becameReady(now: at(.seconds(4)))
        // Up for 10 s: healthy again, the next failure backs off from the start.
        #expect(machine.exited(.exited(code: 1), now: at(.seconds(14)), random: 1) == .scheduleRestart(after: .milliseconds(10)))
    }

    @Test func aShortUptimeDoesNotResetTheBackoff() {
        var machine = running()
        _ = machine.exited(.exited(code: 1), now: at(.seconds(1)), random: 1)
        machine.spawned(now: at(.seconds(2)))
        machine.becameReady(now: at(.seconds(2)))
        #expect(machine.exited(.exited(code: 1), now: at(.seconds(5)), random: 1) == .scheduleRestart(after: .milliseconds(20)))
    }

    @Test func restartingTooOftenIsFlappingAndRetriesAtTheCap() {
        var machine = running()
        var now = Duration.seconds(1)
        for attempt in 1...5 {
            let action = machine.exited(.exited(code: 70), now: at(now), random: 1)
            if attempt < 5 {
                #expect(!machine.isFlapping(now: at(now)))
                #expect(action != .scheduleRestart(after: .seconds(5)))
            } else {
                #expect(machine.isFlapping(now: at(now)))
                #expect(action == .scheduleRestart(after: .seconds(5)), "flapping: retried at the cap")
                #expect(machine.stateName(now: at(now)) == "flapping")
            }
            now += .seconds(5)
            _ = machine.restartDue(now: at(now))
            machine.spawned(now: at(now))
        }
        // A minute later the old restarts have left the window: no longer flapping.
        machine.becameReady(now: at(now))
        #expect(!machine.isFlapping(now: at(now + .seconds(61))))
    }

    @Test func heartbeatsAreNumberedWhileTheWorkerAnswers() {
        var machine = running()
        #expect(machine.heartbeatTick(now: at(.milliseconds(500))) == .sendHeartbeat(sequence: 1))
        machine.heard(now: at(.milliseconds(510)))
        #expect(machine.heartbeatTick(now: at(.seconds(1))) == .sendHeartbeat(sequence: 2))
        machine.heard(now: at(.seconds(3)))
        #expect(machine.heartbeatTick(now: at(.seconds(6))) == .sendHeartbeat(sequence: 3), "3 s since last heard: at the limit, not over")
    }

    @Test func aSilentWorkerIsKilledOnce() {
        var machine = running()
        machine.heard(now: at(.seconds(1)))
        guard case .kill(let reason) = machine.heartbeatTick(now: at(.seconds(4) + .milliseconds(1))) else {
            Issue.record("expected a kill")
            return
        }
        #expect(reason.contains("no heartbeat answer"))
        #expect(machine.heartbeatTick(now: at(.seconds(5))) == .none, "one kill; its exit comes as an event")
        #expect(machine.exited(.signaled(signal: 9), now: at(.seconds(5)), random: 0) == .scheduleRestart(after: .milliseconds(5)))
    }

    @Test func aWorkerHungDuringStartupIsKilledToo() {
        var machine = Machine(policy: policy)
        _ = machine.start()
        machine.spawned(now: at(.zero))
        guard case .kill = machine.heartbeatTick(now: at(.seconds(4))) else {
            Issue.record("expected a kill of the silent starting worker")
            return
        }
    }

    @Test func noHeartbeatsWhileDown() {
        var machine = running()
        _ = machine.exited(.exited(code: 1), now: at(.seconds(1)), random: 0)
        #expect(machine.heartbeatTick(now: at(.seconds(10))) == .none)
    }

    @Test func stopWaitsForTheExitAndNeverRestarts() {
        var machine = running()
        #expect(machine.stopRequested() == .requestStop)
        #expect(machine.stateName(now: at(.seconds(1))) == "stopping")
        #expect(machine.heartbeatTick(now: at(.seconds(10))) == .none)
        #expect(machine.exited(.exited(code: 0), now: at(.seconds(1)), random: 0) == .none)
        #expect(machine.isStopped)
        #expect(machine.restarts == 0)
        #expect(machine.stopRequested() == .none)
    }

    @Test func stopDuringBackoffCancelsTheRestart() {
        var machine = running()
        _ = machine.exited(.exited(code: 1), now: at(.seconds(1)), random: 0)
        #expect(machine.stopRequested() == .none)
        #expect(machine.isStopped)
        #expect(machine.restartDue(now: at(.seconds(2))) == .none)
    }

    @Test func aCrashWhileTheServiceStopsIsNotRestarted() {
        var machine = running()
        machine.serviceStopping()
        #expect(machine.exited(.signaled(signal: 9), now: at(.seconds(1)), random: 0) == .none)
        #expect(machine.restarts == 0)
        #expect(machine.restartDue(now: at(.seconds(2))) == .none)
        #expect(machine.stopRequested() == .none, "already down")
        #expect(machine.isStopped)
    }

    @Test func spawnFailureIsRetriedLikeACrash() {
        var machine = Machine(policy: policy)
        _ = machine.start()
        machine.spawned(now: at(.zero))
        #expect(machine.exited(.spawnFailed("ENOENT"), now: at(.zero), random: 1) == .scheduleRestart(after: .milliseconds(10)))
        #expect(machine.lastExitReason?.description == "could not start: ENOENT")
    }

    @Test func exitReasonsReadLikeStatusOutput() {
        #expect(ExitReason.exited(code: 3).description == "exited with code 3")
        #expect(ExitReason.signaled(signal: 15).description == "killed by SIGTERM")
        #expect(ExitReason.signaled(signal: 64).description == "killed by signal 64")
    }
}
