using Resh.Ordering;

namespace Resh.Tests.Ordering;

public sealed class OrderedLogTests
{
    [Fact]
    public async Task A_subscriber_wakes_for_new_entries_and_reads_them_in_order()
    {
        var log = new OrderedLog();
        using var subscription = log.Subscribe();
        var waiting = subscription.WaitForAsync(0, CancellationToken.None).AsTask();
        Assert.False(waiting.IsCompleted);

        for (var i = 0; i < 10_000; i++)
        {
            log.Append(new LogEntry(LogEventKind.Open, i, 0, ReadOnlyMemory<byte>.Empty, 0));
        }

        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        var buffer = new LogEntry[4096];
        long next = 0;
        while (next < log.Count)
        {
            var n = log.Read(next, buffer);
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(next + i, buffer[i].Sequence);
                Assert.Equal(next + i, buffer[i].SessionId);
            }

            next += n;
        }

        Assert.Equal(10_000, next);
        Assert.Equal(9_999, log.Head);
    }

    [Fact]
    public void Reading_past_the_head_returns_nothing_and_indexing_past_it_throws()
    {
        var log = new OrderedLog();
        Assert.Equal(0, log.Read(0, new LogEntry[4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => log[0]);
    }

    [Fact]
    public void An_entry_built_under_the_append_lock_sees_its_position_and_the_entries_before_it_or_appends_nothing()
    {
        var log = new OrderedLog();
        log.Append(new LogEntry(LogEventKind.Open, 1, 0, ReadOnlyMemory<byte>.Empty, 0));
        Assert.Equal(-1, log.Append(_ => null));
        Assert.Equal(1, log.Count);

        var seen = -1L;
        var built = log.Append(at =>
        {
            seen = at;
            Assert.Equal(LogEventKind.Open, log[at - 1].Kind);
            return new LogEntry(LogEventKind.Close, 1, 0, ReadOnlyMemory<byte>.Empty, 0);
        });
        Assert.Equal(1, built);
        Assert.Equal(1, seen);
        Assert.Equal(LogEventKind.Close, log[1].Kind);
    }

    [Fact]
    public void A_request_entry_needs_a_reply()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LogEntry(LogEventKind.Request, 1, 0, new byte[1], 0));
    }

    private static LogEntry Open(long session) => new(LogEventKind.Open, session, 0, ReadOnlyMemory<byte>.Empty, 0);

    [Fact]
    public void Truncation_forgets_the_covered_prefix_and_keeps_the_rest_readable()
    {
        var log = new OrderedLog();
        for (var i = 0; i < 10_000; i++)
        {
            log.Append(Open(i));
        }

        Assert.Equal(5000, log.TruncateBefore(5000));
        Assert.Equal(5000, log.First);
        Assert.Equal(5000, log.Retained);
        Assert.Throws<ArgumentOutOfRangeException>(() => log[4999]);
        Assert.Throws<ArgumentOutOfRangeException>(() => log.Read(4999, new LogEntry[2]));
        Assert.Equal(5000, log[5000].SessionId);
        var buffer = new LogEntry[10];
        Assert.Equal(10, log.Read(5000, buffer));
        Assert.Equal(5009, buffer[9].SessionId);

        // Never backwards, never past the head.
        Assert.Equal(5000, log.TruncateBefore(10));
        Assert.Equal(10_000, log.TruncateBefore(20_000));
        Assert.Equal(0, log.Retained);
        Assert.Equal(10_000, log.Append(Open(10_000)));
        Assert.Equal(10_000, log[10_000].SessionId);
    }

    [Fact]
    public void The_retained_bytes_follow_appends_and_truncations_whole_chunks_and_partial_ones()
    {
        var log = new OrderedLog();
        Assert.Equal(0, log.RetainedBytes);
        var payload = new byte[100];
        for (var i = 0; i < 10_000; i++)
        {
            log.Append(new LogEntry(LogEventKind.Request, 1, 0, payload, 1));
        }

        var perEntry = 100 + OrderedLog.RecordBytes;
        Assert.Equal(10_000L * perEntry, log.RetainedBytes);

        // Into the first chunk, then past it (its rest dropped with the chunk), then within the third.
        log.TruncateBefore(1000);
        Assert.Equal(9000L * perEntry, log.RetainedBytes);
        log.TruncateBefore(5000);
        Assert.Equal(5000L * perEntry, log.RetainedBytes);
        log.TruncateBefore(9000);
        Assert.Equal(1000L * perEntry, log.RetainedBytes);
        log.TruncateBefore(10_000);
        Assert.Equal(0, log.RetainedBytes);
    }

    [Fact]
    public void Truncated_entries_are_released_at_once_even_within_a_chunk()
    {
        var log = new OrderedLog();
        var released = AppendLarge(log, 10);
        log.ReleaseObjectsBefore(3);

        // Five entries of one chunk (of 4096) are forgotten, three of them held as records only: nothing may keep their
        // megabytes alive.
        log.TruncateBefore(5);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.Equal([false, false, false, false, false, true, true, true, true, true], released.Select(r => r.IsAlive));
        Assert.Equal(5, log[5].SessionId);

        // Then two more, starting inside the same chunk.
        log.TruncateBefore(7);
        GC.Collect();
        Assert.Equal([false, false, true], released.Skip(5).Take(3).Select(r => r.IsAlive));
        Assert.Equal(9, log[9].SessionId);
    }

    [Fact]
    public void Released_entries_keep_everything_but_their_reply_sink_and_their_objects_are_collected()
    {
        var log = new OrderedLog();
        var sink = new NullSink();
        var objects = AppendRequests(log, 10_000, sink);
        log.Append(new LogEntry(LogEventKind.Checkpoint, 0, 0, "SAVE"u8.ToArray(), 1));

        log.ReleaseObjectsBefore(9_000);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        // The released ones are gone from memory; the rest, and the checkpoint entry, are the objects appended.
        Assert.Equal(0, objects.Take(9_000).Count(o => o.IsAlive));
        Assert.All(objects.Skip(9_000), o => Assert.True(o.IsAlive));
        Assert.Equal(1_001, log.ObjectsHeld);

        // A released entry reads back as it was appended, without the sink its reply went to.
        var copy = log[1_234];
        Assert.Equal((1_234L, LogEventKind.Request, 1_234L, 7, 2, 3, true, true), (copy.Sequence, copy.Kind, copy.SessionId, copy.Context, copy.ReplyCount, copy.ReplyHint, copy.ReadOnly, copy.ReplyLastOnly));
        Assert.Equal(BitConverter.GetBytes(1_234), copy.Payload.ToArray());
        Assert.True(copy.AppendedTimestamp > 0);
        Assert.Null(copy.Origin);
        Assert.Same(sink, log[9_500].Origin);

        var batch = new LogEntry[4];
        Assert.Equal(4, log.Read(8_998, batch));
        Assert.Equal([8_998L, 8_999, 9_000, 9_001], batch.Select(e => e.Sequence));
        Assert.Equal([false, false, true, true], batch.Select(e => e.Origin is not null));

        // Releasing past the head keeps what is appended later; truncation still forgets records.
        log.ReleaseObjectsBefore(20_000);
        Assert.Equal(1, log.ObjectsHeld);
        Assert.Equal(LogEventKind.Checkpoint, log[10_000].Kind);
        var later = new LogEntry(LogEventKind.Request, 1, 0, "x"u8.ToArray(), 1, origin: sink);
        log.Append(later);
        Assert.Same(later, log[10_001]);
        log.TruncateBefore(5_000);
        Assert.Throws<ArgumentOutOfRangeException>(() => log[4_999]);
        Assert.Equal(5_000, log[5_000].SessionId);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static List<WeakReference> AppendRequests(OrderedLog log, int count, IReplySink sink)
    {
        var references = new List<WeakReference>();
        for (var i = 0; i < count; i++)
        {
            var entry = new LogEntry(LogEventKind.Request, i, 7, BitConverter.GetBytes(i), 2, replyLastOnly: true, sink, replyHint: 3) { ReadOnly = true };
            log.Append(entry);
            references.Add(new WeakReference(entry));
        }

        return references;
    }

    private sealed class NullSink : IReplySink
    {
        public void Complete(ReadOnlyMemory<byte> reply)
        {
        }
    }

    /// <summary>Appends entries of 1 MiB each and returns weak references to their bytes (made in a frame of its own).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static List<WeakReference> AppendLarge(OrderedLog log, int count)
    {
        var references = new List<WeakReference>();
        for (var i = 0; i < count; i++)
        {
            var payload = new byte[1 << 20];
            log.Append(new LogEntry(LogEventKind.Request, i, 0, payload, 1));
            references.Add(new WeakReference(payload));
        }

        return references;
    }

    [Fact]
    public void A_log_restored_from_a_checkpoint_continues_at_its_position()
    {
        var log = new OrderedLog();
        log.StartAt(123_456);
        Assert.Equal(123_456, log.First);
        Assert.Equal(123_455, log.Head);
        Assert.Equal(123_456, log.Append(Open(1)));
        Assert.Equal(1, log[123_456].SessionId);
        Assert.Throws<ArgumentOutOfRangeException>(() => log[123_455]);
        Assert.Throws<InvalidOperationException>(() => log.StartAt(5));
    }
}
