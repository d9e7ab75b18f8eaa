/// Why a chaos run could not be set up or carried out, with a message a person can act on.
public struct ChaosError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// A command-line option is out of range or malformed.
        case invalidOption
        /// Something the run needs (voxsyncd, PostgreSQL, a command) did not work.
        case environment
        /// The run was interrupted (a second Ctrl-C).
        case interrupted
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
