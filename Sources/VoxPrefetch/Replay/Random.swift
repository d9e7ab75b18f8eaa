#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SplitMix64: a small seeded generator, so a generated workload is the same on every run.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Normal(mean, deviation) by Box–Muller.
    mutating func normal(_ mean: Double, _ deviation: Double) -> Double {
        let u = max(unit(), 1e-300), v = unit()
        return mean + deviation * (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }

    /// Exponential with the given mean.
    mutating func exponential(_ mean: Double) -> Double { -mean * log(max(unit(), 1e-300)) }

    mutating func chance(_ probability: Double) -> Bool { unit() < probability }

    mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * unit() }
}

