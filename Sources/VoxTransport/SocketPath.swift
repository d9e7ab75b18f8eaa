#if canImport(Glibc)
import Glibc
#endif

/// Rules for Unix-domain socket paths.
public enum SocketPath {
    /// `sun_path` holds 108 bytes on Linux, including the terminating NUL.
    public static let maxBytes = 107

    /// Checks that `path` fits in `sockaddr_un`, with an error that says how to fix it.
    public static func validate(_ path: String) throws(TransportError) {
        guard !path.isEmpty else {
            throw TransportError(.invalidSocketPath, "the socket path is empty")
        }
        guard path.utf8.count <= maxBytes else {
            throw TransportError(
                .invalidSocketPath,
                "socket path '\(path)' is \(path.utf8.count) bytes; Unix sockets allow at most \(maxBytes). Use a shorter data or run directory.")
        }
        guard !path.utf8.contains(0) else {
            throw TransportError(.invalidSocketPath, "socket path contains a NUL byte")
        }
    }

    /// Whether a server is accepting connections on `path` right now.
    public static func isListening(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let result = withAddress(of: path) { connect(fd, $0, $1) }
        return result == 0
    }

    /// Calls `body` with a `sockaddr_un` for `path` (which must have passed `validate`).
    public static func withAddress<Result>(of path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(maxBytes))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
