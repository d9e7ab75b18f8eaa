import Foundation

/// How often a chaos action happens, as a user writes it on the command line: a rate
/// (`2`, `0.5/s`, `30/min`) or the interval between two actions (`500ms`, `3s`, `1m`).
/// `0` turns the action off.
public struct ChaosRate: Sendable, Equatable, CustomStringConvertible {
    /// Time between two actions; nil when off.
    public let interval: Duration?

    public static let off = ChaosRate(interval: nil)

    public init(interval: Duration?) {
        self.interval = interval
    }

    /// Parses `text`; the error says what is accepted.
    public init(parsing text: String) throws(ChaosError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        func fail() -> ChaosError {
            ChaosError(.invalidOption, "'\(text)' is neither a rate (2, 0.5/s, 30/min) nor an interval (500ms, 3s, 1m); 0 turns it off")
        }
        let units: [(suffix: String, seconds: Double, isRate: Bool)] = [
            ("/s", 1, true), ("/min", 60, true), ("ms", 0.001, false), ("s", 1, false), ("m", 60, false),
        ]
        var number = trimmed
        var scale = 1.0
        var isRate = true
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            number = String(trimmed.dropLast(unit.suffix.count))
            scale = unit.seconds
            isRate = unit.isRate
            break
        }
        guard let value = Double(number.trimmingCharacters(in: .whitespaces)), value.isFinite, value >= 0 else { throw fail() }
        if value == 0 {
            self.interval = nil
            return
        }
        // A rate of n per `scale` seconds is one action every scale/n seconds.
        let seconds = isRate ? scale / value : value * scale
        guard seconds >= 0.01, seconds <= 86_400 else {
            throw ChaosError(.invalidOption, "'\(text)' is one action every \(seconds) s; use between 10 ms and a day apart (at most 100 per second)")
        }
        self.interval = .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    public var description: String {
        guard let interval else { return "off" }
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        return seconds >= 1 ? "every \(ChaosFormat.decimal(seconds, 1)) s" : "every \(Int((seconds * 1000).rounded())) ms"
    }
}

/// Number formatting shared by the report and the option descriptions.
public enum ChaosFormat {
    /// `value` with `decimals` digits after the point ("1.5", "12.0").
    public static func decimal(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        if decimals == 0 { return String(Int(rounded)) }
        let whole = Int(rounded.magnitude)
        let fraction = Int(((rounded.magnitude - Double(whole)) * scale).rounded())
        let digits = String(fraction)
        return (rounded < 0 ? "-" : "") + "\(whole)." + String(repeating: "0", count: max(0, decimals - digits.count)) + digits
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    public var chaosSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
