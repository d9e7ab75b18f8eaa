/// A failure of the local store, with a message a person can act on.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The database cannot be opened, read or written (disk, permissions, corruption).
        case io
        /// The store was created for other embeddings (dimension or model tag).
        case incompatible
        /// A conditional write lost: the stored version is not the expected one.
        case conflict
        /// A profile or probe broke a rule; nothing was written.
        case invalid(ProfileRules.Violation)
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

import VoxCore
