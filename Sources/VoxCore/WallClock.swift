import Foundation

/// The wall clock in unix milliseconds: what versions, access events and history are stamped
/// with. (Durations are measured with a monotonic clock, never with this.)
public enum WallClock {
    public static func nowMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }
}
