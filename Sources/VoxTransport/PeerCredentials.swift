import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Who is on the other end of a Unix-socket connection, as the kernel reports it (SO_PEERCRED).
/// It cannot be forged by the peer, unlike anything the peer sends.
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public var pid: pid_t
    public var uid: uid_t
    public var gid: gid_t

    public init(pid: pid_t, uid: uid_t, gid: gid_t) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "pid \(pid) uid \(uid) gid \(gid)" }

    /// Reads the peer's credentials of a connected Unix-socket channel.
    public static func of(_ channel: Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(
                TransportError(.protocolViolation, "the channel has no socket to read SO_PEERCRED from"))
        }
        let future: EventLoopFuture<KernelUCred> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return future.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }
}

/// `struct ucred` from <sys/socket.h>, which Glibc only declares under _GNU_SOURCE and so does
/// not import into Swift. Same layout: pid_t, uid_t, gid_t (three 32-bit fields).
struct KernelUCred: Sendable {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}
