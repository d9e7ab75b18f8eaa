/// Puts answers back into request order.
///
/// Requests on one connection may finish out of order (a cache hit answers at once, a write
/// waits for its group commit), but the protocol promises answers in request order. Each
/// request takes a ticket; an answer is released only when every earlier ticket's answer has
/// been released. A pure value: no I/O, no clock.
public struct ResponseSequencer<Response> {
    /// Identifies one request's place in line.
    public struct Ticket: Hashable, Sendable {
        fileprivate let number: UInt64
    }

    private var nextTicket: UInt64 = 0
    private var nextToRelease: UInt64 = 0
    private var finished: [UInt64: Response] = [:]

    public init() {}

    /// Requests whose answers have not been released yet.
    public var pendingCount: Int { Int(nextTicket - nextToRelease) }

    /// Takes the next place in line.
    public mutating func enqueue() -> Ticket {
        defer { nextTicket += 1 }
        return Ticket(number: nextTicket)
    }

    /// The hot path: when nothing is ahead of `ticket`, marks it released and returns true, so
    /// the caller writes its answer directly (no buffering, no allocation). Otherwise changes
    /// nothing and returns false; use `complete`.
    public mutating func releaseIfFirst(_ ticket: Ticket) -> Bool {
        guard ticket.number == nextToRelease && finished.isEmpty else { return false }
        nextToRelease += 1
        return true
    }

    /// Records `response` for `ticket` and returns every answer that may now be written, in
    /// order (empty when an earlier request is still running).
    public mutating func complete(_ ticket: Ticket, with response: Response) -> [Response] {
        precondition(ticket.number >= nextToRelease && ticket.number < nextTicket, "ticket completed twice or never issued")
        if ticket.number == nextToRelease && finished.isEmpty {
            // The common case: nothing waits ahead of this answer.
            nextToRelease += 1
            return [response]
        }
        finished[ticket.number] = response
        var ready: [Response] = []
        while let next = finished.removeValue(forKey: nextToRelease) {
            ready.append(next)
            nextToRelease += 1
        }
        return ready
    }
}
