import Foundation

/// Builds a `VoxsyncConfiguration` from defaults, a JSON file, the environment and flags, in
/// that order, and checks every value on the way.
public enum ConfigurationLoader {
    /// Largest config file read: a config is a few hundred bytes; anything this big is a mistake.
    public static let maxFileBytes = 1 << 20

    /// - Parameters:
    ///   - file: path of a JSON object of `key: value` pairs (strings, numbers, or booleans for
    ///     the boolean keys).
    ///   - environment: `VOXSYNC_<KEY>` variables are read from it.
    ///   - overrides: `key=value` pairs from the command line, applied last.
    public static func load(
        file: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        overrides: [(key: String, value: String)] = []
    ) throws(ConfigurationError) -> VoxsyncConfiguration {
        var configuration = VoxsyncConfiguration()
        if let file {
            try apply(fileAt: file, to: &configuration)
        }
        for key in ConfigurationKeys.all {
            if let value = environment[key.environmentName] {
                try apply(key, value, source: "environment variable \(key.environmentName)", to: &configuration)
            }
        }
        for (name, value) in overrides {
            guard let key = ConfigurationKeys.named(name) else {
                throw ConfigurationError("unknown configuration key '\(name)' in --set; known keys: \(knownKeys)")
            }
            try apply(key, value, source: "--set \(name)", to: &configuration)
        }
        return configuration
    }

    /// Applies a JSON object's pairs (as written by `serialized`) to `configuration`.
    public static func apply(json: Data, source: String, to configuration: inout VoxsyncConfiguration) throws(ConfigurationError) {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: json)
        } catch {
            throw ConfigurationError("\(source) is not valid JSON: \(error.localizedDescription)")
        }
        guard let pairs = object as? [String: Any] else {
            throw ConfigurationError("\(source) must hold a JSON object of \"key\": value pairs")
        }
        for name in pairs.keys.sorted() {
            guard let key = ConfigurationKeys.named(name) else {
                throw ConfigurationError("\(source): unknown key '\(name)'; known keys: \(knownKeys)")
            }
            let text: String
            switch pairs[name] {
            case let string as String: text = string
            case let number as NSNumber where String(cString: number.objCType) == "c":
                guard key.acceptsJSONBoolean else {
                    throw ConfigurationError("\(source): '\(name)' must be a number or a string, not true/false")
                }
                text = number.boolValue ? "true" : "false"
            case let number as NSNumber where key.acceptsJSONFraction:
                text = String(number.doubleValue)
            case let number as NSNumber:
                guard number.doubleValue == number.doubleValue.rounded() else {
                    throw ConfigurationError("\(source): '\(name)' must be a whole number; got \(number)")
                }
                text = String(number.int64Value)
            case is NSNull: text = ""
            default:
                throw ConfigurationError("\(source): '\(name)' must be a string or a number, not a list or an object")
            }
            try apply(key, text, source: source, to: &configuration)
        }
    }

    /// The configuration as a JSON object with every key that has a value: how the supervisor
    /// hands its effective configuration to the workers.
    public static func serialized(_ configuration: VoxsyncConfiguration) -> Data {
        var pairs: [String: String] = [:]
        for key in ConfigurationKeys.all {
            if let value = key.render(configuration) { pairs[key.name] = value }
        }
        return (try? JSONSerialization.data(withJSONObject: pairs, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    /// `url` with its password replaced by `***`, for logs, status and error messages.
    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? "<url with password>"
    }

    private static var knownKeys: String { ConfigurationKeys.all.map(\.name).joined(separator: ", ") }

    private static func apply(fileAt path: String, to configuration: inout VoxsyncConfiguration) throws(ConfigurationError) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ConfigurationError("cannot read config file \(path): \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maxFileBytes + 1)) ?? Data()
        guard data.count <= maxFileBytes else {
            throw ConfigurationError("config file \(path) is over \(maxFileBytes) bytes; is it the right file?")
        }
        try apply(json: data, source: "config file \(path)", to: &configuration)
    }

    private static func apply(_ key: ConfigurationKey, _ text: String, source: String, to configuration: inout VoxsyncConfiguration) throws(ConfigurationError) {
        do {
            try key.parse(text, &configuration)
        } catch {
            throw ConfigurationError("\(source): \(error.message)")
        }
    }
}
