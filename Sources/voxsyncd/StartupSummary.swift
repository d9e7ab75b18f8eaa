import NIOCore
import VoxCore
import VoxSupervisor
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// The one block voxsyncd prints when it is up: what runs, where, and what is switched on.
enum StartupSummary {
    static func render(configuration: VoxsyncConfiguration, instanceID: String, supervisor: Supervisor, startedIn: Duration) async -> String {
        let status = try? await supervisor.status().get()
        let details = (try? await supervisor.readyDetails().get()) ?? []
        var lines = ["voxsyncd 0.1.0 up in \(Int(startedIn.seconds * 1000)) ms — instance \(instanceID), supervisor pid \(getpid())"]
        func row(_ label: String, _ value: String) { lines.append("  " + label.padding(toLength: 16, withPad: " ", startingAt: 0) + value) }
        row("data directory", "\(configuration.dataDirectory) (locked)")
        let uids = ([getuid()] + configuration.allowedUIDs).map(String.init).joined(separator: ",")
        row("client socket", "\(configuration.clientSocketPath) (mode 0600, uids \(uids))")
        row("control socket", "\(configuration.controlSocketPath) (voxsync status)")
        for (index, (role, pid, detail)) in details.enumerated() {
            let state = status?.workers.first { $0.role.serviceRole == role }?.state ?? "?"
            row(index == 0 ? "workers" : "", "\(role.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) pid \(pid) \(state) — \(detail)")
        }
        row("cache size", "\(configuration.cacheCapacity) profiles, \(configuration.embeddingDimension)-dim embeddings of model \(configuration.embeddingModel)")
        row("durability", configuration.sqliteSynchronous == "full"
            ? "every write fsynced before it is acknowledged (sqlite_synchronous=full)"
            : "writes acknowledged once in the OS: a power cut may lose the last ones (sqlite_synchronous=normal)")
        row("PostgreSQL", configuration.postgresURL.map { ConfigurationLoader.redacted($0) } ?? "not configured (postgres_url / VOXSYNC_POSTGRES_URL); the store stays local")
        row("Redis", configuration.redisURL.map { ConfigurationLoader.redacted($0) } ?? "not configured (redis_url / VOXSYNC_REDIS_URL)")
        row("Prometheus", configuration.metricsAddress.isEmpty ? "disabled" : "http://\(configuration.metricsAddress)/metrics")
        return lines.joined(separator: "\n")
    }
}
