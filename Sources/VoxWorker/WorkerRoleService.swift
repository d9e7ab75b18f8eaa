import ServiceLifecycle

/// The long-lived part of one worker role, run as a swift-service-lifecycle `Service`.
///
/// `prepare` does the role's initialisation (the cache worker's preload); the worker reports
/// ready to the supervisor only after it returns, with the one-line detail it returns.
public protocol WorkerRoleService: Service {
    func prepare() async throws -> String
}

