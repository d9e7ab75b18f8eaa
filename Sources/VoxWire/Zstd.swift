import CZstd

/// A reusable zstd compression context.
///
/// One per connection: reusing the context cuts a 768-byte compression from about 12 µs to
/// about 4 µs on the reference machine (../shared/NOTES.md). Not thread-safe; a connection's
/// encoder lives on its event loop.
public final class ZstdCompressor {
    private let context: OpaquePointer

    public init() {
        guard let context = ZSTD_createCCtx() else { fatalError("ZSTD_createCCtx: out of memory") }
        self.context = context
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compresses `source` into one zstd frame that declares its content size.
    public func compress(_ source: UnsafeRawBufferPointer, level: Int32) -> [UInt8] {
        let bound = ZSTD_compressBound(source.count)
        return [UInt8](unsafeUninitializedCapacity: bound) { destination, written in
            let result = ZSTD_compressCCtx(
                context, destination.baseAddress, bound, source.baseAddress, source.count, level)
            // Compressing into a buffer of ZSTD_compressBound cannot fail for lack of space;
            // any other error would be a bug in how we call zstd.
            precondition(ZSTD_isError(result) == 0, "zstd: \(String(cString: ZSTD_getErrorName(result)))")
            written = result
        }
    }
}

/// A reusable zstd decompression context that refuses to inflate past a limit.
///
/// The guard follows NIOHTTPCompression's decompression limit: the size a frame declares is
/// checked before any memory is allocated, a frame that does not declare one is refused, and
/// the output buffer is exactly the declared size, so a lying frame cannot write past it.
public final class ZstdDecompressor {
    private let context: OpaquePointer

    public init() {
        guard let context = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx: out of memory") }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses `source`, which must be exactly one zstd frame declaring at most `limit`
    /// bytes of content.
    public func decompress(_ source: UnsafeRawBufferPointer, limit: Int) throws(WireError) -> [UInt8] {
        let declared = ZSTD_getFrameContentSize(source.baseAddress, source.count)
        if declared == voxsync_zstd_contentsize_error {
            throw WireError(.compressedBodyInvalid, "flag 'compressed' is set but the body is not a zstd frame")
        }
        if declared == voxsync_zstd_contentsize_unknown {
            throw WireError(
                .compressedSizeUnknown,
                "the zstd frame does not declare its content size; compress with the size in the frame header (ZSTD_compress does)")
        }
        guard declared <= UInt64(limit) else {
            throw WireError(
                .compressedSizeTooLarge,
                "the zstd frame declares \(declared) bytes of content; the limit is \(limit)")
        }
        let frameSize = ZSTD_findFrameCompressedSize(source.baseAddress, source.count)
        guard ZSTD_isError(frameSize) == 0, frameSize == source.count else {
            throw WireError(.compressedBodyInvalid, "the body must be exactly one complete zstd frame")
        }
        let capacity = Int(declared)
        var failure: WireError?
        let output = [UInt8](unsafeUninitializedCapacity: capacity) { destination, written in
            let result = ZSTD_decompressDCtx(
                context, destination.baseAddress, capacity, source.baseAddress, source.count)
            if ZSTD_isError(result) != 0 || result != capacity {
                let reason = ZSTD_isError(result) != 0 ? String(cString: ZSTD_getErrorName(result)) : "short output"
                failure = WireError(.compressedBodyInvalid, "the zstd frame does not decompress: \(reason)")
                written = 0
            } else {
                written = result
            }
        }
        if let failure { throw failure }
        return output
    }
}
