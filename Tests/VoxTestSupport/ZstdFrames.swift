import CZstd

/// A zstd frame of `input`, with or without the content size in its header: the production
/// encoder always declares it, so tests build the frames the guard must refuse here.
public func zstdFrame(_ input: [UInt8], declareSize: Bool) -> [UInt8] {
    let context = ZSTD_createCCtx()!
    defer { ZSTD_freeCCtx(context) }
    ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, declareSize ? 1 : 0)
    let bound = ZSTD_compressBound(input.count)
    var output = [UInt8](repeating: 0, count: bound)
    let written = input.withUnsafeBytes { source in
        output.withUnsafeMutableBytes { ZSTD_compress2(context, $0.baseAddress, bound, source.baseAddress, source.count) }
    }
    precondition(ZSTD_isError(written) == 0)
    return Array(output.prefix(written))
}
