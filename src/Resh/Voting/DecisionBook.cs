namespace Resh.Voting;

/// <summary>What the vote on a log position came to.</summary>
public enum Decision : byte
{
    /// <summary>Not decided yet (or unknown: never voted here, or forgotten with the log before a checkpoint).</summary>
    Pending,

    /// <summary>f+1 equal replies decided it; its digest is what replayed replies are checked against.</summary>
    Decided,

    /// <summary>No reply can reach f+1 any more.</summary>
    Disagreed,
}

/// <summary>
/// The outcome of the vote on every log position still held: decision, digest of the decided reply, and when it was
/// decided (by the voter's clock). Owned by the <see cref="Voter"/>, which alone writes it (under its caller's
/// serialization); read without a lock by anyone (a replica's writer asks whether a read may be left out), since a
/// position's kind is published after its digest and time. Positions are kept in chunks of 4,096, a chunk dropped
/// when the log is truncated past it: the book holds what the log holds.
/// </summary>
public sealed class DecisionBook
{
    private const int ChunkBits = 12;
    private const int ChunkSize = 1 << ChunkBits;
    private const int Mask = ChunkSize - 1;

    private volatile Table _table = new(0, []);

    /// <summary>The decision at <paramref name="sequence"/>; <see cref="Decision.Pending"/> when none (yet) or forgotten.</summary>
    public Decision KindOf(long sequence) =>
        Find(sequence) is { } chunk ? (Decision)Volatile.Read(ref chunk.Kinds[(int)(sequence & Mask)]) : Decision.Pending;

    /// <summary>The digest of the decided reply at <paramref name="sequence"/>; meaningful when <see cref="KindOf"/> says decided.</summary>
    public UInt128 DigestOf(long sequence) =>
        Find(sequence) is { } chunk && Volatile.Read(ref chunk.Kinds[(int)(sequence & Mask)]) == (byte)Decision.Decided ? chunk.Digests[(int)(sequence & Mask)] : default;

    /// <summary>When <paramref name="sequence"/> was decided or disagreed on (voter's clock timestamp); 0 while pending.</summary>
    public long TimeOf(long sequence) =>
        Find(sequence) is { } chunk && Volatile.Read(ref chunk.Kinds[(int)(sequence & Mask)]) != (byte)Decision.Pending ? chunk.Times[(int)(sequence & Mask)] : 0;

    /// <summary>Records an outcome. Called by the voter only, one caller at a time.</summary>
    internal void Record(long sequence, Decision kind, UInt128 digest, long timestamp)
    {
        var table = _table;
        var index = (sequence >> ChunkBits) - table.FirstChunk;
        if (index < 0)
        {
            return;
        }

        if (index >= table.Chunks.Length)
        {
            var grown = new Chunk?[Math.Max(4, (int)Math.Max(index + 1, table.Chunks.Length * 2L))];
            Array.Copy(table.Chunks, grown, table.Chunks.Length);
            table = new Table(table.FirstChunk, grown);
            _table = table;
        }

        var chunk = table.Chunks[index];
        if (chunk is null)
        {
            chunk = new Chunk();
            Volatile.Write(ref table.Chunks[index], chunk);
        }

        var i = (int)(sequence & Mask);
        chunk.Digests[i] = digest;
        chunk.Times[i] = timestamp;
        Volatile.Write(ref chunk.Kinds[i], (byte)kind);
    }

    /// <summary>Forgets the chunks wholly before <paramref name="sequence"/> (the log was truncated there). Called with <see cref="Record"/>'s serialization.</summary>
    internal void TruncateBefore(long sequence)
    {
        var table = _table;
        var first = sequence >> ChunkBits;
        var drop = first - table.FirstChunk;
        if (drop <= 0)
        {
            return;
        }

        var kept = drop >= table.Chunks.Length ? [] : table.Chunks[(int)drop..];
        _table = new Table(first, kept);
    }

    private Chunk? Find(long sequence)
    {
        var table = _table;
        var index = (sequence >> ChunkBits) - table.FirstChunk;
        return index >= 0 && index < table.Chunks.Length ? Volatile.Read(ref table.Chunks[index]) : null;
    }

    private sealed record Table(long FirstChunk, Chunk?[] Chunks);

    private sealed class Chunk
    {
        public readonly byte[] Kinds = new byte[ChunkSize];
        public readonly UInt128[] Digests = new UInt128[ChunkSize];
        public readonly long[] Times = new long[ChunkSize];
    }
}
