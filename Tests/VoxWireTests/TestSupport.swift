import Foundation
import NIOCore
import VoxWire

func bytes(hex: String) -> [UInt8] {
    hex.split(separator: " ").map { UInt8($0, radix: 16)! }
}

func hexString(_ buffer: ByteBuffer) -> String {
    buffer.readableBytesView.map { String(format: "%02x", $0) }.joined(separator: " ")
}

/// A frame assembled by hand, to feed the decoder bytes the encoder would never produce.
func rawFrame(flags: UInt8, body: [UInt8], length: UInt32? = nil) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(length ?? UInt32(body.count + 1), endianness: .big)
    buffer.writeInteger(flags)
    buffer.writeBytes(body)
    return buffer
}

func encodeFrames(_ envelopes: [Envelope], configuration: WireConfiguration = .init()) throws -> ByteBuffer {
    var encoder = FrameEncoder(configuration: configuration)
    var buffer = ByteBuffer()
    for envelope in envelopes { try encoder.encode(envelope, into: &buffer) }
    return buffer
}

/// Feeds `stream` to a fresh decoder in chunks ending at `cuts` and collects every envelope.
func decodeAll(_ stream: ByteBuffer, cuts: [Int], configuration: WireConfiguration = .init()) throws -> [Envelope] {
    var decoder = FrameDecoder(configuration: configuration)
    var pending = ByteBuffer()
    var out: [Envelope] = []
    var start = 0
    for end in cuts + [stream.readableBytes] where end > start {
        var chunk = stream.getSlice(at: stream.readerIndex + start, length: end - start)!
        pending.writeBuffer(&chunk)
        start = end
        while let envelope = try decoder.decode(&pending) { out.append(envelope) }
    }
    precondition(pending.readableBytes == 0, "bytes left over")
    return out
}

/// Deterministic generator so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func embedding(_ values: [Float]) -> Embedding {
    var embedding = Embedding()
    embedding.values = values
    return embedding
}

/// One envelope of every message the protocol defines, each with its fields set.
func oneOfEveryMessage() -> [Envelope] {
    var rng = SplitMix64(state: 7)
    let vector = (0..<192).map { _ in Float.random(in: -1...1, using: &rng) }
    var profile = Profile()
    profile.speakerID = "alice"
    profile.embedding = embedding(vector)
    profile.samples = [embedding(vector.reversed()), embedding(vector.map { $0 / 2 })]
    profile.threshold = 0.25
    profile.metadata = #"{"device":"kitchen"}"#
    profile.version = 0x0001_8C2A_0000_0003
    profile.origin = "instance-a"
    profile.updatedAtUnixMs = 1_764_547_200_000
    profile.deleted = false

    var hello = Hello(); hello.protocolVersion = 1; hello.clientName = "tests"
    var helloOk = HelloOk(); helloOk.protocolVersion = 1; helloOk.serverName = "voxsyncd"; helloOk.embeddingDimension = 192
    helloOk.instanceID = "i-1"; helloOk.maxFrameBytes = 16 << 20; helloOk.maxInFlight = 64; helloOk.embeddingModel = "ecapa-tdnn-192"
    var ping = Ping(); ping.payload = Data([1, 2, 3])
    var pong = Pong(); pong.payload = Data([3, 2, 1])
    var put = Voxsync_V1_PutRequest(); put.profile = profile; put.expectedVersion = 0
    var putOk = Voxsync_V1_PutResponse(); putOk.version = 9; putOk.origin = "i-1"
    var get = Voxsync_V1_GetRequest(); get.speakerID = "alice"
    var getOk = Voxsync_V1_GetResponse(); getOk.profile = profile; getOk.source = .cache
    var verify = Voxsync_V1_VerifyRequest(); verify.speakerID = "alice"; verify.probe = embedding(vector)
    var verifyOk = Voxsync_V1_VerifyResponse(); verifyOk.score = 0.91; verifyOk.accepted = true; verifyOk.threshold = 0.25; verifyOk.source = .sqlite
    var identify = Voxsync_V1_IdentifyRequest(); identify.probe = embedding(vector); identify.k = 10; identify.minScore = 0.1
    var match = Voxsync_V1_Match(); match.speakerID = "bob"; match.score = 0.5
    var identifyOk = Voxsync_V1_IdentifyResponse(); identifyOk.matches = [match, match]
    var delete = Voxsync_V1_DeleteRequest(); delete.speakerID = "alice"
    var deleteOk = Voxsync_V1_DeleteResponse(); deleteOk.version = 10; deleteOk.existed = true
    var list = Voxsync_V1_ListRequest(); list.prefix = "a"; list.pageToken = "t"; list.pageSize = 10
    var listOk = Voxsync_V1_ListResponse(); listOk.speakerIds = ["alice", "anna"]; listOk.nextPageToken = "anna"
    var statsOk = Voxsync_V1_StatsResponse(); statsOk.profiles = 2; statsOk.cacheHits = 5; statsOk.extra = ["prefetch_precision": 0.9]
    var ready = Voxsync_V1_WorkerReady(); ready.role = .cache; ready.pid = 42; ready.detail = "preloaded 2"
    var heartbeat = Voxsync_V1_Heartbeat(); heartbeat.sequence = 77
    var heartbeatAck = Voxsync_V1_HeartbeatAck(); heartbeatAck.sequence = 77
    var worker = WorkerStatus(); worker.role = .sync; worker.pid = 43; worker.state = "ready"; worker.restarts = 2
    worker.uptimeSeconds = 1.5; worker.lastExitReason = "killed by SIGKILL"
    var statusOk = StatusResponse(); statusOk.workers = [worker]; statusOk.supervisorPid = 1; statusOk.instanceID = "i-1"
    var shutdown = Voxsync_V1_ShutdownRequest(); shutdown.deadlineMs = 5000
    var counter = Voxsync_V1_CounterSample(); counter.name = "cache_hits_total"; counter.value = 3
    var label = Voxsync_V1_Label(); label.name = "source"; label.value = "cache"
    var histogram = Voxsync_V1_HistogramSample(); histogram.name = "read_latency_seconds"; histogram.labels = [label]
    histogram.upperBounds = [0.001, 0.01]; histogram.bucketCounts = [1, 2, 3]; histogram.sum = 0.02; histogram.count = 3
    var gauge = Voxsync_V1_GaugeSample(); gauge.name = "cache_size"; gauge.value = 2
    var snapshot = Voxsync_V1_MetricsSnapshot(); snapshot.role = .cache; snapshot.pid = 42; snapshot.takenAtUnixMs = 1
    snapshot.counters = [counter]; snapshot.gauges = [gauge]; snapshot.histograms = [histogram]
    var event = Voxsync_V1_AccessEvent(); event.speakerID = "alice"; event.atUnixMs = 5; event.hit = true
    var events = Voxsync_V1_AccessEvents(); events.events = [event]
    var prefetch = Voxsync_V1_PrefetchList(); prefetch.speakerIds = ["alice"]
    var prefetchOk = Voxsync_V1_PrefetchListResponse(); prefetchOk.loaded = 1; prefetchOk.usedTotal = 4; prefetchOk.wastedTotal = 1
    var prediction = Voxsync_V1_PrefetchPrediction(); prediction.speakerID = "alice"; prediction.confidence = 0.8
    prediction.expectedAtUnixMs = 9; prediction.reason = "interval"
    var predictions = Voxsync_V1_PrefetchPredictionsRequest(); predictions.windowSeconds = 300; predictions.limit = 20
    var predictionsOk = Voxsync_V1_PrefetchPredictionsResponse(); predictionsOk.predictions = [prediction]
    predictionsOk.threshold = 0.7; predictionsOk.precision = -1; predictionsOk.speakers = 1
    var nudge = Voxsync_V1_OutboxNudge(); nudge.pending = 3
    var invalidate = Voxsync_V1_Invalidate(); invalidate.speakerIds = ["bob"]

    let messages: [Envelope.OneOf_Message] = [
        .hello(hello), .helloOk(helloOk), .ping(ping), .pong(pong),
        .error(Envelope.error(requestID: 0, code: .dimensionMismatch, message: "m", field: "probe").error),
        .put(put), .putOk(putOk), .get(get), .getOk(getOk), .verify(verify), .verifyOk(verifyOk),
        .identify(identify), .identifyOk(identifyOk), .delete(delete), .deleteOk(deleteOk),
        .list(list), .listOk(listOk), .stats(.init()), .statsOk(statsOk),
        .workerReady(ready), .heartbeat(heartbeat), .heartbeatAck(heartbeatAck), .status(.init()), .statusOk(statusOk),
        .shutdown(shutdown), .metricsSnapshot(snapshot), .accessEvents(events), .prefetchList(prefetch),
        .prefetchListOk(prefetchOk), .prefetchPredictions(predictions), .prefetchPredictionsOk(predictionsOk),
        .outboxNudge(nudge), .invalidate(invalidate),
    ]
    return messages.enumerated().map { Envelope(requestID: UInt64($0.offset + 1), $0.element) }
}
