import ArgumentParser
import VoxCore
import VoxWorker

/// `voxsyncd`: the voxsync service. Without a subcommand it is the supervisor; `voxsyncd
/// worker <role>` is what the supervisor runs for each worker process.
@main
struct Voxsyncd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "voxsyncd",
        abstract: "Run the voxsync service (supervisor and workers).",
        subcommands: [SuperviseCommand.self, WorkerCommand.self, ConfigKeysCommand.self],
        defaultSubcommand: SuperviseCommand.self)
}

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run one worker process (started by the supervisor).", shouldDisplay: false)

    @Argument(help: "cache, sync, metrics or prefetch")
    var role: String

    func run() async throws {
        guard let role = ServiceRole(rawValue: role) else {
            throw ValidationError("worker role must be cache, sync, metrics or prefetch; got '\(self.role)'")
        }
        do {
            try await WorkerMain.run(role: role)
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("voxsyncd worker \(role.rawValue): \(error.message)\n".utf8))
            throw ExitCode(78)
        }
    }
}

struct ConfigKeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-keys", abstract: "List every configuration key with its environment variable and meaning.")

    func run() {
        let defaults = VoxsyncConfiguration()
        print("| key | environment | default | meaning |")
        print("|---|---|---|---|")
        for key in ConfigurationKeys.all {
            let value = ConfigurationLoader.serialized(defaults)
            let object = (try? JSONSerialization.jsonObject(with: value)) as? [String: String]
            print("| `\(key.name)` | `\(key.environmentName)` | \(object?[key.name].map { "`\($0)`" } ?? "unset") | \(key.help) |")
        }
    }
}


import Foundation
