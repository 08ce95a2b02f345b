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
    public void A_request_entry_needs_a_reply()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LogEntry(LogEventKind.Request, 1, 0, new byte[1], 0));
    }
}
