import CVoxSys
import Foundation
import VoxCore

#if canImport(Glibc)
import Glibc
#endif

/// Starts worker processes with `posix_spawn`, giving each exactly the descriptors it should
/// have: its end of the control channel as fd 4, and for the cache worker the client listening
/// socket as fd 3. Everything else the supervisor holds is close-on-exec.
public struct ProcessSpawner: Sendable {
    /// Descriptor numbers a worker finds its sockets at (also passed in the environment).
    public static let listenDescriptor: CInt = 3
    public static let controlDescriptor: CInt = 4

    /// The voxsyncd binary to run as `voxsyncd worker <role>`.
    public var executable: String

    public init(executable: String = ProcessSpawner.currentExecutable()) {
        self.executable = executable
    }

    /// The running executable's path, from /proc/self/exe.
    public static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        guard length > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Spawns `voxsyncd worker <role>`; returns its pid.
    public func spawn(role: ServiceRole, configuration: Data, controlDescriptor: CInt, listenDescriptor: CInt?) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let listenDescriptor {
            posix_spawn_file_actions_adddup2(&actions, listenDescriptor, Self.listenDescriptor)
        }
        posix_spawn_file_actions_adddup2(&actions, controlDescriptor, Self.controlDescriptor)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Workers start with default signal dispositions and an empty mask, whatever the
        // supervisor ignores or blocks, in a process group of their own: a Ctrl-C in the
        // terminal reaches the supervisor, which then stops the workers in order, instead of
        // every worker at once.
        voxsync_spawnattr_clean_signals(&attributes, 1)

        var environment = ProcessInfo.processInfo.environment
        environment["VOXSYNC_SUPERVISOR_PID"] = String(getpid())
        environment["VOXSYNC_CONTROL_FD"] = String(Self.controlDescriptor)
        environment["VOXSYNC_WORKER_CONFIG"] = String(decoding: configuration, as: UTF8.self)
        if listenDescriptor != nil { environment["VOXSYNC_LISTEN_FD"] = String(Self.listenDescriptor) }

        let arguments = [executable, "worker", role.rawValue]
        let environmentStrings = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let result = withCStrings(arguments) { argv in
            withCStrings(environmentStrings) { envp in
                posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            }
        }
        guard result == 0 else {
            throw ConfigurationError("cannot start \(executable) worker \(role.rawValue): \(String(cString: strerror(result)))")
        }
        return pid
    }

    private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return body(pointers)
    }
}
