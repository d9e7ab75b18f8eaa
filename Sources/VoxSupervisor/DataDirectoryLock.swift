import Foundation
import VoxCore

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a data directory, held for the supervisor's lifetime: one supervisor
/// per data directory. The lock file holds the owner's pid so a second supervisor can say who
/// has it. The kernel drops the lock when the process dies, however it dies.
/// Sendable: its only state is an immutable descriptor and path.
public final class DataDirectoryLock: Sendable {
    private let descriptor: CInt
    public let path: String

    public init(path: String) throws(ConfigurationError) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ConfigurationError("cannot open lock file \(path): \(String(cString: strerror(errno))); is the data directory writable?")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw ConfigurationError(
                "data directory \((path as NSString).deletingLastPathComponent) is in use by another voxsyncd (pid \(holder), lock \(path)); stop it first or choose another --data-dir")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
        self.descriptor = fd
        self.path = path
    }

    deinit {
        close(descriptor)
    }
}
