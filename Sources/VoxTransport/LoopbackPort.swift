import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum LoopbackPort {
    /// A TCP port on 127.0.0.1 that nothing is bound to right now, for a server that a test or
    /// benchmark starts a moment later (a metrics endpoint, a private PostgreSQL).
    ///
    /// It is chosen outside the kernel's ephemeral range (`ip_local_port_range`, 32768–60999
    /// by default): below it, or above it when too little is left below. A port inside that
    /// range — the kernel's own pick for port 0 included — can be taken in the meantime by any
    /// outgoing connection to PostgreSQL or Redis; CI once lost a metrics endpoint that way. A
    /// port outside it is only ever taken by another listener. Returns nil when there is no
    /// such range of 1000 ports, or 200 random tries all found the port taken.
    public static func unused() -> Int? {
        guard let range = candidates(ephemeral: ephemeralRange()) else { return nil }
        for _ in 0..<200 {
            let port = Int.random(in: range)
            if isFree(port) { return port }
        }
        return nil
    }

    /// Unprivileged ports clear of `ephemeral`: 20000 up to it, else 10000 up to it, else
    /// above it (at least 1000 of them).
    static func candidates(ephemeral: ClosedRange<Int>) -> Range<Int>? {
        for low in [20_000, 10_000] where ephemeral.lowerBound - low >= 1000 {
            return low..<min(ephemeral.lowerBound, 32_768)
        }
        if 65_536 - (ephemeral.upperBound + 1) >= 1000 { return ephemeral.upperBound + 1..<65_536 }
        return nil
    }

    /// The kernel's ephemeral port range (32768–60999 when it cannot be read).
    static func ephemeralRange() -> ClosedRange<Int> {
        let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        let bounds = (text ?? "").split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        guard bounds.count == 2, bounds[0] <= bounds[1] else { return 32_768...60_999 }
        return bounds[0]...bounds[1]
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
