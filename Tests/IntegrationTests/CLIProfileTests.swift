import Foundation
import Testing

/// The profile commands of the `voxsync` CLI end to end: the real binary against a real
/// voxsyncd, as the README shows them — demo data, then verify and identify; enrolling from a
/// JSON file, a NumPy `.npy` and raw float32 on stdin; get, list, delete, stats; and the
/// refusals (exit 65 with the field named).
extension ServiceTests {
    @Suite(.serialized) struct CLIProfileTests {
        /// Runs a shell command line; returns its exit code and its stdout and stderr together.
        static func shell(_ line: String) async throws -> (code: Int32, output: String) {
            let output = "/tmp/vxi-cli-" + String(UUID().uuidString.prefix(8))
            defer { try? FileManager.default.removeItem(atPath: output) }
            let code = try await runCommand(["/bin/sh", "-c", "\(line) >\(output) 2>&1"])
            return (code, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }

        static func vector(_ index: Int) -> [Float] {
            (0..<192).map { Float(sin(Double(index * 193 + $0) * 0.37)) }
        }

        /// A NumPy version-1.0 file of float32 rows, written as numpy.save writes one.
        static func npy(_ rows: [[Float]]) -> Data {
            var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows.count), \(rows[0].count)), }"
            while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
            header += "\n"
            var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
            data.append(contentsOf: [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
            data.append(contentsOf: Array(header.utf8))
            for value in rows.joined() { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            return data
        }

        @Test func theProfileCommandsWorkAsTheREADMEShows() async throws {
            let service = try await ServiceProcess.started()
            defer { service.cleanUp() }
            let files = NSTemporaryDirectory() + "vxi-cli-files-" + String(UUID().uuidString.prefix(8))
            try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: files) }
            let cli = "'\(binDirectory)/voxsync'"
            let socket = "--socket '\(service.socketPath)'"

            let demo = try await Self.shell("\(cli) demo-data --speakers 40 --probe-out \(files)/probe.json \(socket)")
            #expect(demo.code == 0 && demo.output.contains("enrolled 40 speakers"), "\(demo.output)")
            let accepted = try await Self.shell("\(cli) verify demo-0001 --probe \(files)/probe.json \(socket)")
            #expect(accepted.code == 0 && accepted.output.hasPrefix("accepted: score") && accepted.output.contains("from cache"), "\(accepted.output)")
            let rejected = try await Self.shell("\(cli) verify demo-0002 --probe \(files)/probe.json \(socket)")
            #expect(rejected.code == 1 && rejected.output.hasPrefix("rejected: score"), "\(rejected.output)")
            let identified = try await Self.shell("\(cli) identify --probe \(files)/probe.json -k 3 \(socket)")
            #expect(identified.code == 0 && identified.output.hasPrefix("1. demo-0001 "), "\(identified.output)")
            #expect(identified.output.split(separator: "\n").count == 3)

            // JSON (an embedding and one sample), .npy (two rows) and raw float32 from stdin.
            let json = "[" + [Self.vector(1), Self.vector(2)].map { "[" + $0.map { "\($0)" }.joined(separator: ",") + "]" }.joined(separator: ",") + "]"
            try json.write(toFile: "\(files)/alice.json", atomically: true, encoding: .utf8)
            try Self.npy([Self.vector(3), Self.vector(3).map { $0 * 2 }]).write(to: URL(fileURLWithPath: "\(files)/bob.npy"))
            try Data(Self.vector(5).flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) })
                .write(to: URL(fileURLWithPath: "\(files)/carol.f32"))
            for (speaker, source, vectors) in [("alice", "--embedding \(files)/alice.json", 2), ("bob", "--embedding \(files)/bob.npy", 2),
                                               ("carol", "--embedding - < \(files)/carol.f32", 1)] {
                let enrolled = try await Self.shell("\(cli) enroll \(speaker) \(source) --model ecapa-tdnn-192 \(socket)")
                #expect(enrolled.code == 0 && enrolled.output.hasPrefix("enrolled \(speaker) with \(vectors) vector(s): version "), "\(enrolled.output)")
            }
            let bob = try await Self.shell("\(cli) get bob \(socket)")
            #expect(bob.code == 0 && bob.output.contains("1 + 1 samples of 192 floats") && bob.output.contains("source     cache"), "\(bob.output)")
            let bobProbe = "[" + Self.vector(3).map { "\($0)" }.joined(separator: ",") + "]"
            try bobProbe.write(toFile: "\(files)/bob-probe.json", atomically: true, encoding: .utf8)
            let bobVerified = try await Self.shell("\(cli) verify bob --probe \(files)/bob-probe.json \(socket)")
            #expect(bobVerified.code == 0, "bob's own first vector is accepted: \(bobVerified.output)")

            // Refusals name the field and write nothing.
            let otherModel = try await Self.shell("\(cli) enroll dave --embedding \(files)/alice.json --model wavlm-base-plus \(socket)")
            #expect(otherModel.code == 65 && otherModel.output.contains("embedding.model"), "\(otherModel.output)")
            // (The CLI itself refuses a file of the wrong dimension, before sending anything.)
            try "[1, 0, 0]".write(toFile: "\(files)/short.json", atomically: true, encoding: .utf8)
            let short = try await Self.shell("\(cli) enroll dave --embedding \(files)/short.json \(socket)")
            #expect(short.code == 65 && short.output.contains("192"), "\(short.output)")
            let badOption = try await Self.shell("\(cli) verify bob --probe \(files)/bob-probe.json --model 'two words' \(socket)")
            #expect(badOption.code == 64 && badOption.output.contains("--model"), "\(badOption.output)")
            let dave = try await Self.shell("\(cli) get dave \(socket)")
            #expect(dave.code == 65, "dave was never written: \(dave.output)")

            let listed = try await Self.shell("\(cli) list --prefix demo-000 \(socket)")
            #expect(listed.code == 0 && listed.output.split(separator: "\n") == (1...9).map { "demo-000\($0)"[...] }, "\(listed.output)")
            let deleted = try await Self.shell("\(cli) delete alice \(socket)")
            #expect(deleted.code == 0 && deleted.output.hasPrefix("deleted alice"), "\(deleted.output)")
            let gone = try await Self.shell("\(cli) get alice \(socket)")
            #expect(gone.code == 65, "\(gone.output)")
            let stats = try await Self.shell("\(cli) stats \(socket)")
            #expect(stats.code == 0 && stats.output.contains("profiles        42"), "40 demo speakers, bob and carol: \(stats.output)")
        }
    }
}
