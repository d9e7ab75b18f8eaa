/// A hybrid logical clock (Kulkarni et al., 2014) for profile versions.
///
/// A version is `(physical milliseconds << 16) | logical counter`: it orders like wall time
/// when clocks are sane, never goes backwards when the local wall clock steps back, and stays
/// ahead of every version this instance has seen from others. Comparing versions as plain
/// integers, with the origin instance id to break ties, gives the same last-writer-wins order
/// on every instance.
///
/// A pure value: the wall time is passed in.
public struct HybridLogicalClock: Sendable, Equatable {
    /// Bits of the logical counter.
    public static let logicalBits: UInt64 = 16
    static let logicalMask: UInt64 = (1 << logicalBits) - 1

    public private(set) var last: UInt64

    public init(last: UInt64 = 0) {
        self.last = last
    }

    /// The physical part (milliseconds since the epoch) of a version.
    public static func milliseconds(of version: UInt64) -> Int64 {
        Int64(version >> logicalBits)
    }

    /// The version for a local event at wall time `wallMilliseconds`.
    public mutating func tick(wallMilliseconds: Int64) -> UInt64 {
        let wall = UInt64(max(0, wallMilliseconds)) << Self.logicalBits
        last = wall > last ? wall : advance(last)
        return last
    }

    /// Takes in a version seen from another instance, so that the next local version is newer.
    public mutating func observe(_ remote: UInt64, wallMilliseconds: Int64) {
        let wall = UInt64(max(0, wallMilliseconds)) << Self.logicalBits
        last = max(last, remote, wall)
    }

    /// The next version after `version`: one more in the counter, carrying into the
    /// milliseconds when 65 536 versions fall into the same millisecond.
    private func advance(_ version: UInt64) -> UInt64 {
        version &+ 1  // the counter's overflow carries into the physical part by itself
    }
}
