import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum LoopbackPort {
    /// A TCP port on 127.0.0.1 that nothing is bound to right now, for a server that a test or
    /// benchmark starts a moment later (a metrics endpoint, a private PostgreSQL).
    ///
    /// It is chosen below the kernel's ephemeral range (`ip_local_port_range`, from 32768 by
    /// default). A port inside that range — the kernel's own pick for port 0 included — can be
    /// taken in the meantime by any outgoing connection to PostgreSQL or Redis; CI once lost a
    /// metrics endpoint that way. A port below it is only ever taken by another listener.
    /// Returns nil when 200 random tries all found the port taken.
    public static func unused() -> Int? {
        let range = 20_000..<max(20_001, min(ephemeralRangeStart(), 32_768))
        for _ in 0..<200 {
            let port = Int.random(in: range)
            if isFree(port) { return port }
        }
        return nil
    }

    /// The first port of the kernel's ephemeral range (32768 when it cannot be read).
    static func ephemeralRangeStart() -> Int {
        let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        guard let low = text?.split(whereSeparator: \.isWhitespace).first.flatMap({ Int($0) }), low > 1024 else { return 32_768 }
        return low
    }

    /// Whether a socket can bind 127.0.0.1:`port` (closed again at once).
    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
