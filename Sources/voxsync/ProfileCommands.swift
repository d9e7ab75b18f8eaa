import ArgumentParser
import Foundation
import VoxClient
import VoxCore
import VoxWire

/// Runs `body` with a client, turning every failure into a message and a sysexits code.
func withClient<T>(_ connection: ConnectionOptions, _ body: (VoxClient, HelloOk) async throws -> T) async throws -> T {
    let client = connection.makeClient()
    defer { client.close() }
    do {
        let hello = try await client.serverHello()
        return try await body(client, hello)
    } catch let error as EmbeddingFile.Failure {
        FileHandle.standardError.write(Data("voxsync: \(error.description)\n".utf8))
        throw ExitCode(65)
    } catch let error as ExitCode {
        throw error
    } catch {
        throw fail(error, socket: client.configuration.socketPath)
    }
}

func makeEmbedding(_ values: [Float], model: String = "") -> Embedding {
    var embedding = Embedding()
    embedding.values = values
    embedding.model = model
    return embedding
}

/// `--model`: the model that made the vectors of a file, checked by the service against its
/// store's (PROTOCOL.md, `Embedding.model`).
struct ModelOption: ParsableArguments {
    @Option(help: "Model that made the vectors (e.g. ecapa-tdnn-192); the service refuses them if its store holds another model's. Unset: not checked.")
    var model: String = ""

    func validate() throws {
        if !model.isEmpty, let problem = ProfileRules.checkModelTag(model) { throw ValidationError("--model \(problem)") }
    }
}

struct EnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Enroll or replace a speaker from an embedding file (JSON, .npy or raw float32; '-' is stdin).",
        discussion: "The first vector in the file is the embedding; any further ones (up to 64) are extra enrollment samples.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Speaker id (1-256 bytes of UTF-8).") var speaker: String
    @Option(help: "Embedding file, or - for stdin.") var embedding: String
    @Option(help: "Accept threshold (cosine); 0 uses the store default 0.25.") var threshold: Float = 0
    @Option(help: "Free-text metadata (at most 64 KiB).") var metadata: String = ""
    @Option(help: "Only write if the stored version is this one (0: only if the speaker does not exist).") var ifVersion: UInt64?
    @OptionGroup var model: ModelOption

    func run() async throws {
        try await withClient(connection) { client, hello in
            let vectors = try EmbeddingFile.vectors(atPath: embedding, dimension: Int(hello.embeddingDimension))
            var profile = Profile()
            profile.speakerID = speaker
            profile.embedding = makeEmbedding(vectors[0], model: model.model)
            profile.samples = vectors.dropFirst().map { makeEmbedding($0, model: model.model) }
            profile.threshold = threshold
            profile.metadata = metadata
            var put = Voxsync_V1_PutRequest()
            put.profile = profile
            if let ifVersion { put.expectedVersion = ifVersion }
            guard case .putOk(let ok) = try await client.send(.put(put)) else { throw ExitCode(76) }
            print("enrolled \(speaker) with \(vectors.count) vector(s): version \(ok.version)")
        }
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show a speaker's profile.")
    @OptionGroup var connection: ConnectionOptions
    @Argument var speaker: String

    func run() async throws {
        try await withClient(connection) { client, _ in
            var get = Voxsync_V1_GetRequest()
            get.speakerID = speaker
            guard case .getOk(let ok) = try await client.send(.get(get)) else { throw ExitCode(76) }
            let p = ok.profile
            print("""
                speaker    \(p.speakerID)
                vectors    1 + \(p.samples.count) samples of \(p.embedding.values.count) floats
                threshold  \(p.threshold == 0 ? "default" : String(p.threshold))
                metadata   \(p.metadata.isEmpty ? "-" : p.metadata)
                version    \(p.version) (origin \(p.origin), updated \(Date(timeIntervalSince1970: Double(p.updatedAtUnixMs) / 1000)))
                source     \(ok.source == .cache ? "cache" : "sqlite")
                """)
        }
    }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Is this voice the speaker? Exit 0 when accepted, 1 when rejected.")
    @OptionGroup var connection: ConnectionOptions
    @Argument var speaker: String
    @Option(help: "Probe embedding file, or - for stdin.") var probe: String
    @OptionGroup var model: ModelOption

    func run() async throws {
        let accepted = try await withClient(connection) { client, hello in
            let vectors = try EmbeddingFile.vectors(atPath: probe, dimension: Int(hello.embeddingDimension))
            var verify = Voxsync_V1_VerifyRequest()
            verify.speakerID = speaker
            verify.probe = makeEmbedding(vectors[0], model: model.model)
            guard case .verifyOk(let ok) = try await client.send(.verify(verify)) else { throw ExitCode(76) }
            print("\(ok.accepted ? "accepted" : "rejected"): score \(String(format: "%.4f", ok.score)), threshold \(ok.threshold), from \(ok.source == .cache ? "cache" : "sqlite")")
            return ok.accepted
        }
        if !accepted { throw ExitCode(1) }
    }
}

struct IdentifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "identify", abstract: "Who is this? The k most similar speakers.")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Probe embedding file, or - for stdin.") var probe: String
    @Option(name: .short, help: "How many (1-1000).") var k: UInt32 = 5
    @Option(help: "Leave out matches scoring below this cosine (-1 to 1; 0 means no filter).") var minScore: Float = 0
    @OptionGroup var model: ModelOption

    func run() async throws {
        try await withClient(connection) { client, hello in
            let vectors = try EmbeddingFile.vectors(atPath: probe, dimension: Int(hello.embeddingDimension))
            var identify = Voxsync_V1_IdentifyRequest()
            identify.probe = makeEmbedding(vectors[0], model: model.model)
            identify.k = k
            identify.minScore = minScore
            guard case .identifyOk(let ok) = try await client.send(.identify(identify)) else { throw ExitCode(76) }
            if ok.matches.isEmpty { print("no match") }
            for (rank, match) in ok.matches.enumerated() { print("\(rank + 1). \(match.speakerID)  \(String(format: "%.4f", match.score))") }
        }
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a speaker (a tombstone that syncs too).")
    @OptionGroup var connection: ConnectionOptions
    @Argument var speaker: String

    func run() async throws {
        try await withClient(connection) { client, _ in
            var delete = Voxsync_V1_DeleteRequest()
            delete.speakerID = speaker
            guard case .deleteOk(let ok) = try await client.send(.delete(delete)) else { throw ExitCode(76) }
            print(ok.existed ? "deleted \(speaker) (version \(ok.version))" : "\(speaker) did not exist")
        }
    }
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List speaker ids, all pages.")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Only ids starting with this.") var prefix: String = ""
    @Option(help: "Ids per request (1-1000).") var pageSize: UInt32 = 500

    func run() async throws {
        try await withClient(connection) { client, _ in
            var token = ""
            repeat {
                var list = Voxsync_V1_ListRequest()
                list.prefix = prefix
                list.pageToken = token
                list.pageSize = pageSize
                guard case .listOk(let ok) = try await client.send(.list(list)) else { throw ExitCode(76) }
                ok.speakerIds.forEach { print($0) }
                token = ok.nextPageToken
            } while !token.isEmpty
        }
    }
}

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Profiles, cache, outbox and prefetch figures.")
    @OptionGroup var connection: ConnectionOptions

    /// The cache's prefetch figures (`StatsResponse.extra`): entries loaded ahead of their
    /// read, those read (the hits prefetching added) and those evicted unread.
    static func prefetchLine(_ extra: [String: Double]) -> String {
        guard let loaded = extra["prefetch_loaded"] else { return "prefetch        not reported by this cache worker" }
        let used = Int(extra["prefetch_used"] ?? 0), wasted = Int(extra["prefetch_wasted"] ?? 0)
        let precision = extra["prefetch_precision"].map { String(format: "precision %.2f", $0) } ?? "precision not measured yet"
        return "prefetch        \(Int(loaded)) loaded, \(used) read (hits added), \(wasted) evicted unread; \(precision)"
    }

    func run() async throws {
        try await withClient(connection) { client, _ in
            guard case .statsOk(let s) = try await client.send(.stats(.init())) else { throw ExitCode(76) }
            let lookups = s.cacheHits + s.cacheMisses
            print("""
                profiles        \(s.profiles)
                cache           \(s.cacheEntries) of \(s.cacheCapacity)
                cache hits      \(s.cacheHits) of \(lookups) lookups\(lookups > 0 ? String(format: " (%.1f %%)", 100 * Double(s.cacheHits) / Double(lookups)) : "")
                outbox pending  \(s.outboxPending)
                """)
            print(Self.prefetchLine(s.extra))
        }
    }
}
