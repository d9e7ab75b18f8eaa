import CVoxSys
import Foundation
import VoxCore

#if canImport(Glibc)
import Glibc
#endif

/// Waits for child processes to end, on a thread of its own (`waitpid` blocks), and reports
/// each exit. The report hops to the supervisor's event loop through the callback.
public final class ChildReaper: Sendable {
    private let onExit: @Sendable (pid_t, ExitReason) -> Void

    public init(onExit: @escaping @Sendable (pid_t, ExitReason) -> Void) {
        self.onExit = onExit
    }

    public func start() {
        let thread = Thread { [onExit] in
            while true {
                var status: Int32 = 0
                let pid = waitpid(-1, &status, 0)
                if pid > 0 {
                    onExit(pid, Self.reason(status))
                } else if errno == ECHILD {
                    usleep(2_000)  // no children right now (between restarts)
                } else if errno != EINTR {
                    usleep(2_000)
                }
            }
        }
        thread.name = "voxsync-reaper"
        thread.start()
    }

    static func reason(_ status: Int32) -> ExitReason {
        let signal = voxsync_wait_signal(status)
        if signal == 0 { return .exited(code: voxsync_wait_exit_code(status)) }
        return .signaled(signal: signal)
    }
}
