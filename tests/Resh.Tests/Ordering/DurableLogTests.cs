using System.Text;
using Resh.Ordering;

namespace Resh.Tests.Ordering;

public sealed class DurableLogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "resh-dlog-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private DurableLog Open(LogFsync fsync = LogFsync.Always) => DurableLog.Open(new DurableLogOptions { Directory = _dir, Fsync = fsync });

    private static async Task AppendAsync(OrderedLog log, DurableLog durable, IEnumerable<LogEntry> entries)
    {
        foreach (var e in entries)
        {
            log.Append(e);
        }

        await Tools.WaitUntilAsync(() => durable.DurableCount == log.Count, TimeSpan.FromSeconds(10));
    }

    private static IEnumerable<LogEntry> Sample(int n) => Enumerable.Range(0, n).Select(i => i % 10 == 0
        ? new LogEntry(LogEventKind.Open, i, 0, ReadOnlyMemory<byte>.Empty, 0)
        : new LogEntry(LogEventKind.Request, i % 7, i % 3, Encoding.ASCII.GetBytes($"payload-{i}-" + new string('x', i % 50)), 1 + (i % 2), replyLastOnly: i % 2 == 1, replyHint: i % 4));

    [Theory]
    [InlineData(LogFsync.Always)]
    [InlineData(LogFsync.EverySecond)]
    [InlineData(LogFsync.No)]
    public async Task Entries_come_back_in_order_with_every_field(LogFsync fsync)
    {
        var expected = Sample(500).ToList();
        var log = new OrderedLog();
        await using (var durable = Open(fsync))
        {
            Assert.Empty(durable.Recovered);
            log.AttachDurable(durable);
            await AppendAsync(log, durable, expected);
        }

        await using var reopened = Open(fsync);
        Assert.Equal(expected.Count, reopened.Recovered.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            var (a, b) = (expected[i], reopened.Recovered[i]);
            Assert.Equal((a.Kind, a.SessionId, a.Context, a.ReplyCount, a.ReplyLastOnly, a.ReplyHint), (b.Kind, b.SessionId, b.Context, b.ReplyCount, b.ReplyLastOnly, b.ReplyHint));
            Assert.Equal(a.Payload.ToArray(), b.Payload.ToArray());
        }
    }

    [Fact]
    public async Task A_torn_tail_is_cut_off_and_appending_continues_after_the_valid_prefix()
    {
        var log = new OrderedLog();
        await using (var durable = Open())
        {
            log.AttachDurable(durable);
            await AppendAsync(log, durable, Sample(50));
        }

        var path = Directory.GetFiles(_dir).Single();
        var length = new FileInfo(path).Length;

        // A crash in the middle of the next record: half a header and some body bytes.
        await using (var f = new FileStream(path, FileMode.Append))
        {
            f.Write([40, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        }

        // And one flipped byte inside the last complete record is caught by its checksum.
        var log2 = new OrderedLog();
        await using (var reopened = Open())
        {
            Assert.Equal(50, reopened.Recovered.Count);
            Assert.Equal(length, new FileInfo(path).Length);
            foreach (var e in reopened.Recovered)
            {
                log2.Append(e);
            }

            log2.AttachDurable(reopened);
            await AppendAsync(log2, reopened, Sample(5));
        }

        var bytes = await File.ReadAllBytesAsync(path);
        bytes[^3] ^= 0x40;
        await File.WriteAllBytesAsync(path, bytes);
        await using var third = Open();
        Assert.Equal(54, third.Recovered.Count);
    }

    [Fact]
    public async Task The_durable_event_reports_progress_in_order()
    {
        var log = new OrderedLog();
        var seen = new List<long>();
        await using var durable = Open();
        durable.Durable += count =>
        {
            lock (seen)
            {
                seen.Add(count);
            }
        };
        log.AttachDurable(durable);
        await AppendAsync(log, durable, Sample(200));
        lock (seen)
        {
            Assert.Equal(200, seen[^1]);
            Assert.Equal(seen.Order(), seen);
        }
    }
}
