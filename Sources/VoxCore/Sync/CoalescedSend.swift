/// When a coalescing message — "look again", as the cache's outbox nudge tells the sync
/// worker — goes out: not while another waits in the queue (once is enough), and while one
/// is on its way, at most one more, sent when the peer has answered the first. The peer may
/// have looked before what the later calls announce happened, but not before it answered,
/// so one owed message covers them all: the peer hears one per round trip however often
/// the sender is asked (the cache asked once per group commit, ~100 µs of its loop each).
///
/// A pure value; `PeerSender` (the I/O shell) asks it and does what it says.
public struct CoalescedSend<Message> {
    /// One was handed to the connection and its answer is not back.
    private var onItsWay = false
    /// Asked for again meanwhile: the latest such message.
    private var owed: Message?

    public init() {}

    /// Asked to send `message`; `queued` says whether any message waits in the queue.
    /// Returns whether to queue it now.
    public mutating func asked(_ message: Message, queued: Bool) -> Bool {
        if queued { return false }
        if onItsWay {
            owed = message
            return false
        }
        return true
    }

    /// It left the queue for the connection.
    public mutating func sent() {
        onItsWay = true
    }

    /// Its answer came back (or the connection failed): the owed message to queue now, if any.
    public mutating func answered() -> Message? {
        onItsWay = false
        defer { owed = nil }
        return owed
    }

    /// The sender stopped: nothing is owed.
    public mutating func reset() {
        onItsWay = false
        owed = nil
    }
}

extension CoalescedSend: Sendable where Message: Sendable {}
