/// A Prometheus metric or label name: `[a-zA-Z_][a-zA-Z0-9_]*` (the metrics namespace, and
/// every name the metrics worker accepts in a snapshot).
public enum PrometheusName {
    public static func isValid(_ text: String, maxBytes: Int = 128) -> Bool {
        !text.isEmpty && text.utf8.count <= maxBytes && text.unicodeScalars.enumerated().allSatisfy { index, scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || scalar == "_" || (index > 0 && ("0"..."9").contains(scalar)))
        }
    }
}
