import ArgumentParser
import Foundation
import NIOCore
import VoxWire

/// Frame encode + decode throughput for several body sizes, raw and zstd-compressed.
struct FramesBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frames",
        abstract: "Frame encode+decode throughput (64 B, 1 KiB, 64 KiB bodies; raw and compressed).")

    @Option(help: "Seconds to spend per row (0.1-60).")
    var seconds: Double = 1

    func validate() throws {
        guard (0.1...60).contains(seconds) else { throw ValidationError("--seconds must be between 0.1 and 60; got \(seconds)") }
    }

    func run() throws {
        var table = Table("body", "mode", "wire bytes", "frames/s", "MiB/s (body)", "µs per frame")
        for size in [64, 1024, 64 * 1024] {
            for compressed in [false, true] {
                let result = try measure(bodySize: size, compressed: compressed)
                table.add(
                    size >= 1024 ? "\(size / 1024) KiB" : "\(size) B",
                    compressed ? "zstd-1" : "raw",
                    "\(result.wireBytes)",
                    format(result.framesPerSecond),
                    format(result.framesPerSecond * Double(size) / 1_048_576, decimals: 1),
                    format(1e6 / result.framesPerSecond, decimals: 2))
            }
        }
        print("Frame encode + decode (one thread, encoder and decoder reused as on a connection)")
        print()
        print(table.render())
    }

    /// A ping whose payload looks like a profile's metadata and float data: half text, half
    /// float32 values, so compression has realistic material.
    private func envelope(bodySize: Int) -> Envelope {
        var payload = Data()
        var value: Float = 0.1
        while payload.count < bodySize / 2 {
            withUnsafeBytes(of: value) { payload.append(contentsOf: $0) }
            value = value * 1.37 + 0.01
            if value > 1 { value -= 1 }
        }
        let text = Data(#"{"speaker":"alice","device":"kitchen","model":"ecapa-tdnn-192"}"#.utf8)
        while payload.count < bodySize - 8 { payload.append(text.prefix(bodySize - 8 - payload.count)) }
        var ping = Ping()
        ping.payload = payload
        return Envelope(requestID: 1, .ping(ping))
    }

    private func measure(bodySize: Int, compressed: Bool) throws -> (framesPerSecond: Double, wireBytes: Int) {
        var configuration = WireConfiguration()
        configuration.compressionThreshold = compressed ? 0 : .max
        var encoder = FrameEncoder(configuration: configuration)
        var decoder = FrameDecoder(configuration: configuration)
        let message = envelope(bodySize: bodySize)
        var buffer = ByteBufferAllocator().buffer(capacity: bodySize * 2)
        try encoder.encode(message, into: &buffer)
        let wireBytes = buffer.readableBytes
        guard try decoder.decode(&buffer) == message else { throw ValidationError("frame did not round-trip") }

        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        var frames = 0
        let started = monotonicNanoseconds()
        while monotonicNanoseconds() < deadline {
            for _ in 0..<64 {
                buffer.clear()
                try encoder.encode(message, into: &buffer)
                guard try decoder.decode(&buffer) != nil else { throw ValidationError("short frame") }
            }
            frames += 64
        }
        let elapsed = Double(monotonicNanoseconds() - started) / 1e9
        return (Double(frames) / elapsed, wireBytes)
    }
}
