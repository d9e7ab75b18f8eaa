import Foundation

/// Where voxsync keeps its files when nothing else is configured. The daemon and the CLI both
/// use these, so `voxsync` finds a `voxsyncd` started with defaults.
public enum DefaultPaths {
    /// `$VOXSYNC_DATA_DIR`, else `$HOME/.local/share/voxsync`.
    public static func dataDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["VOXSYNC_DATA_DIR"], !explicit.isEmpty { return explicit }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib"
        return home + "/.local/share/voxsync"
    }

    /// The run directory (sockets, lock): `<data>/run`.
    public static func runDirectory(dataDirectory: String) -> String {
        dataDirectory + "/run"
    }

    /// The client socket: `$VOXSYNC_SOCKET`, else `<data>/run/voxsync.sock`.
    public static func clientSocket(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["VOXSYNC_SOCKET"], !explicit.isEmpty { return explicit }
        return runDirectory(dataDirectory: dataDirectory(environment: environment)) + "/voxsync.sock"
    }
}
