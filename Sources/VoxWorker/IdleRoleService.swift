import ServiceLifecycle
import VoxCore

/// A worker role whose behaviour has not been built yet: it runs as a real process with the
/// whole lifecycle (control channel, readiness, heartbeats, graceful stop) and says what it
/// does not do yet in its readiness detail.
struct IdleRoleService: WorkerRoleService {
    let detail: String

    func prepare() async throws -> String { detail }

    func run() async throws {
        try? await gracefulShutdown()
    }
}
