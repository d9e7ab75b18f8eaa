import VoxCore
import VoxTransport

#if canImport(Glibc)
import Glibc
#endif

/// The client socket, created by the supervisor before any worker starts and handed to the
/// cache worker by descriptor inheritance. Because the supervisor keeps its own descriptor,
/// the socket outlives any cache worker: a client connecting during a restart waits in the
/// backlog instead of being refused.
public enum ListeningSocket {
    public static let backlog: CInt = 1024

    /// Binds and listens on `path` with file mode `mode`; the descriptor is close-on-exec (the
    /// spawner dup2s it into the cache worker explicitly).
    public static func bind(path: String, mode: mode_t) throws(ConfigurationError) -> CInt {
        do {
            try SocketPath.validate(path)
        } catch {
            throw ConfigurationError(error.message)
        }
        if SocketPath.isListening(path) {
            throw ConfigurationError("something is already listening on \(path); stop it or choose another socket path")
        }
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ConfigurationError("socket(): \(String(cString: strerror(errno)))") }
        let bound = SocketPath.withAddress(of: path) { Glibc.bind(fd, $0, $1) }
        guard bound == 0, chmod(path, mode) == 0, listen(fd, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ConfigurationError("cannot listen on \(path): \(reason); is its directory writable?")
        }
        return fd
    }
}
