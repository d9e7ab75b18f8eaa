import Foundation

/// Runs `redis-benchmark` against a Redis on a Unix socket and reads its CSV.
struct RedisBenchmark {
    struct Row {
        var requestsPerSecond: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
    }

    var socketPath: String
    var executable = "redis-benchmark"

    /// One redis-benchmark run; `test` is e.g. "ping" (reports PING_MBULK), "get" or "set".
    /// `keyspace`: keys drawn at random from that many (`-r`) instead of one fixed key.
    func run(test: String, clients: Int, requests: Int, valueSize: Int? = nil, keyspace: Int? = nil) throws -> Row {
        var arguments = ["-s", socketPath, "-t", test, "-c", "\(clients)", "-n", "\(requests)", "--csv"]
        if let valueSize { arguments += ["-d", "\(valueSize)"] }
        if let keyspace { arguments += ["-r", "\(keyspace)"] }
        let output = try runProcess(executable, arguments)
        let wanted = test == "ping" ? "PING_MBULK" : test.uppercased()
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            guard fields.count >= 7, fields[0] == wanted,
                  let rps = Double(fields[1]), let p50 = Double(fields[4]), let p99 = Double(fields[6]) else { continue }
            return Row(requestsPerSecond: rps, p50Microseconds: p50 * 1000, p99Microseconds: p99 * 1000)
        }
        throw BenchError("redis-benchmark printed no \(wanted) row:\n\(output)")
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a program to completion and returns its standard output.
func runProcess(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [executable] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.standardError
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw BenchError("\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
    }
    return String(decoding: data, as: UTF8.self)
}
