import Foundation

/// Reads embeddings from the formats people have at hand: a JSON array (one vector, or an
/// array of vectors), a NumPy `.npy` file of float32 (shape (D,) or (N, D)), or raw
/// little-endian float32 (D values per vector).
public enum EmbeddingFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// Largest input read: 64 enrollment vectors of 8 192 floats are 2 MiB; allow headroom.
    public static let maxBytes = 16 << 20

    /// Parses `data`; `dimension` (from the server's handshake) splits raw float32 input.
    public static func vectors(from data: Data, dimension: Int) throws -> [[Float]] {
        guard data.count <= maxBytes else { throw Failure(description: "the input is \(data.count) bytes; at most \(maxBytes) are read") }
        guard !data.isEmpty else { throw Failure(description: "the input is empty") }
        if data.starts(with: [0x93] + Array("NUMPY".utf8)) { return try npy(data) }
        if let first = data.first(where: { ![0x20, 0x0a, 0x0d, 0x09].contains($0) }), first == UInt8(ascii: "[") {
            do {
                return try json(data)
            } catch {
                // Raw floats can start with the byte '[' too: fall back when the size fits.
                if data.count % (4 * max(dimension, 1)) == 0 { return try raw(data, dimension: dimension) }
                throw error
            }
        }
        return try raw(data, dimension: dimension)
    }

    private static func raw(_ data: Data, dimension: Int) throws -> [[Float]] {
        guard dimension > 0, data.count % (4 * dimension) == 0 else {
            throw Failure(description: "raw float32 input of \(data.count) bytes is not a whole number of \(dimension)-float vectors; use JSON or .npy, or check the dimension")
        }
        let floats = data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        return stride(from: 0, to: floats.count, by: dimension).map { Array(floats[$0..<$0 + dimension]) }
    }

    public static func vectors(atPath path: String, dimension: Int) throws -> [[Float]] {
        let data: Data
        let handle = path == "-" ? FileHandle.standardInput : FileHandle(forReadingAtPath: path)
        guard let handle else { throw Failure(description: "cannot read \(path)") }
        // Read at most one byte more than the limit, so /dev/zero or a huge file is refused
        // rather than read into memory.
        data = (try? handle.read(upToCount: maxBytes + 1)) ?? Data()
        do {
            return try vectors(from: data, dimension: dimension)
        } catch let failure as Failure {
            throw Failure(description: "\(path == "-" ? "standard input" : path): \(failure.description)")
        }
    }

    private static func json(_ data: Data) throws -> [[Float]] {
        let object = try? JSONSerialization.jsonObject(with: data)
        if let flat = object as? [NSNumber], !flat.isEmpty { return [flat.map(\.floatValue)] }
        if let nested = object as? [[NSNumber]], !nested.isEmpty { return nested.map { $0.map(\.floatValue) } }
        throw Failure(description: "JSON input must be an array of numbers or an array of arrays of numbers")
    }

    private static func npy(_ data: Data) throws -> [[Float]] {
        let bytes = [UInt8](data)
        guard bytes.count > 10 else { throw Failure(description: "truncated .npy header") }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            guard bytes.count > 12 else { throw Failure(description: "truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        guard headerStart + headerLength <= bytes.count else { throw Failure(description: "truncated .npy header") }
        let header = String(decoding: bytes[headerStart..<headerStart + headerLength], as: UTF8.self)
        guard header.contains("'descr': '<f4'") else {
            throw Failure(description: ".npy must hold little-endian float32 ('<f4'); convert with array.astype('<f4')")
        }
        guard !header.contains("'fortran_order': True") else { throw Failure(description: ".npy in Fortran order is not supported") }
        guard let open = header.firstIndex(of: "("), let close = header.firstIndex(of: ")") else {
            throw Failure(description: ".npy header has no shape")
        }
        let shape = header[header.index(after: open)..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let payload = Data(bytes[(headerStart + headerLength)...])
        let elements = shape.reduce(into: (value: 1, overflow: false)) { total, next in
            let product = total.value.multipliedReportingOverflow(by: next)
            total = (product.partialValue, total.overflow || product.overflow || next < 0)
        }
        guard let last = shape.last, last > 0, shape.count <= 2, !elements.overflow, elements.value > 0,
              payload.count == elements.value * 4 else {
            throw Failure(description: ".npy shape \(shape) does not match its \(payload.count) bytes of data")
        }
        return try raw(payload, dimension: last)
    }
}
