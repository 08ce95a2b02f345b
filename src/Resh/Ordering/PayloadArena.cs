namespace Resh.Ordering;

/// <summary>
/// Where the bytes of log entries live: small payloads are copied into shared blocks of 1 MiB allocated on the pinned
/// object heap, one after another, instead of an array each. A log entry lives until a checkpoint truncates the log,
/// so every array it owned was copied by the collector from generation 0 to 1 and again to 2; with the bytes in blocks
/// the collector never moves them and copies only the small entries (a 1 GiB data set written through the gateway
/// was 1.1 GiB of collected heap before; see docs/benchmarks.md). The log is truncated in order, so a block's entries
/// die together and the block with them. Blocks are not zeroed: every byte handed out is written first.
/// </summary>
public static class PayloadArena
{
    /// <summary>Payloads at least this large get an array of their own (a block would be wasted on a few).</summary>
    public const int LargePayload = 16 * 1024;

    private const int BlockSize = 1 << 20;

    private static Block _current = new();

    /// <summary>A copy of <paramref name="bytes"/> that nothing else writes to.</summary>
    public static ReadOnlyMemory<byte> Copy(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0)
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        if (bytes.Length >= LargePayload)
        {
            return bytes.ToArray();
        }

        while (true)
        {
            var block = Volatile.Read(ref _current);
            var end = Interlocked.Add(ref block.Used, bytes.Length);
            if (end <= BlockSize)
            {
                var slice = block.Bytes.AsMemory(end - bytes.Length, bytes.Length);
                bytes.CopyTo(slice.Span);
                return slice;
            }

            // Full: the first to notice puts a new block in place; the rest of this one stays unused.
            Interlocked.CompareExchange(ref _current, new Block(), block);
        }
    }

    private sealed class Block
    {
        public readonly byte[] Bytes = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);
        public int Used;
    }
}
