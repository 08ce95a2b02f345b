namespace Resh.Protocols;

/// <summary>
/// Brings a replica to the state of the others by the pieces of state a stretch of requests changed (RESP: keys),
/// instead of running that stretch again. Optional: a protocol without it is always brought up to date by replay.
/// </summary>
public interface IStateTransfer
{
    /// <summary>A new, empty set of changes.</summary>
    IStateChanges NewChanges();
}

/// <summary>The pieces of state a stretch of requests changed, collected request by request. Not thread-safe.</summary>
public interface IStateChanges
{
    /// <summary>How many pieces (RESP: keys) are collected.</summary>
    int Count { get; }

    /// <summary>
    /// Adds what one submitted unit, run in session context <paramref name="context"/>, may change. False when its
    /// effect is not confined to pieces it names (RESP: FLUSHALL, a script, CONFIG SET): such a stretch is replayed.
    /// </summary>
    bool Add(int context, ReadOnlySpan<byte> payload);

    /// <summary>
    /// One request that reads every collected piece, run in context 0 on every replica that votes and voted like any
    /// request. Its replies are compared under <see cref="StateRead.ReplyHint"/>, which makes equal state compare equal
    /// whatever its internal encoding on each replica.
    /// </summary>
    StateRead Read();

    /// <summary>
    /// The requests that give another replica what the decided <paramref name="replies"/> to <see cref="Read"/> hold,
    /// sent on a connection of their own. Throws <see cref="InvalidDataException"/> when the replies cannot be used
    /// (the service refused to read its state this way).
    /// </summary>
    StateWrite Write(ReadOnlySpan<byte> replies);
}

/// <summary>A request reading state: its bytes, how many replies it produces, and how the vote compares them.</summary>
public readonly record struct StateRead(byte[] Payload, int ReplyCount, int ReplyHint);

/// <summary>Requests writing state: their bytes (pipelined) and how many replies they produce, none of them an error.</summary>
public readonly record struct StateWrite(byte[] Payload, int ReplyCount);
