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

        // One flipped byte inside the last complete record is caught by its checksum, and not cut: that record
        // was written completely (and maybe acknowledged), so the start stops and names it.
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[^3] ^= 0x40;
        await File.WriteAllBytesAsync(path, bytes);
        var damaged = Assert.Throws<LogDamagedException>(() => Open());
        Assert.Contains(Path.GetFileName(path), damaged.Message, StringComparison.Ordinal);
        Assert.Contains("entries from #54 on", damaged.Message, StringComparison.Ordinal);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(path));
    }

    [Fact]
    public async Task Zeros_after_the_last_record_are_a_torn_tail_and_cut()
    {
        await WriteAsync([.. Sample(20)]);
        var path = Directory.GetFiles(_dir).Single();
        var length = new FileInfo(path).Length;
        await using (var f = new FileStream(path, FileMode.Append))
        {
            f.Write(new byte[5000]);
        }

        Assert.Equal(SegmentDamage.TornTail, Assert.Single(DurableLog.Inspect(_dir)).Damage);
        await using var reopened = Open();
        Assert.Equal(20, reopened.Recovered.Count);
        Assert.Equal(length, new FileInfo(path).Length);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_bit_flipped_in_the_middle_of_the_last_segment_stops_the_start_and_repair_cuts_there(bool lengthField)
    {
        var entries = Sample(100).ToList();
        await WriteAsync(entries);
        var path = Directory.GetFiles(_dir).Single();
        var offset = OffsetOf(entries, 40) + (lengthField ? 2 : 30); // in record #40: its length field, or its body
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[offset] ^= 0x10;
        await File.WriteAllBytesAsync(path, bytes);

        var e = Assert.Throws<LogDamagedException>(() => Open());
        Assert.Contains($"damaged at byte {OffsetOf(entries, 40)} of {bytes.Length}", e.Message, StringComparison.Ordinal);
        Assert.Contains("entries from #40 on cannot be read (59 intact records follow the damage", e.Message, StringComparison.Ordinal);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(path));
        var scan = Assert.Single(DurableLog.Inspect(_dir));
        Assert.Equal((SegmentDamage.Damaged, 40, 59), (scan.Damage, scan.Entries, scan.RecordsAfterDamage));

        // A dry run changes nothing; the repair keeps the intact prefix and says what is lost.
        var plan = DurableLog.Repair(_dir, coveredThrough: -1, apply: false);
        Assert.False(plan.Changed);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(path));
        var repair = DurableLog.Repair(_dir, coveredThrough: 9, apply: true);
        Assert.True(repair.Changed);
        Assert.StartsWith("entries from #40 on", repair.Lost, StringComparison.Ordinal);
        await using var reopened = DurableLog.Open(new DurableLogOptions { Directory = _dir }, coveredThrough: 9);
        Assert.Equal(30, reopened.Recovered.Count);
        Assert.Equal(40, reopened.Next);
    }

    [Fact]
    public async Task Damage_in_an_earlier_segment_is_refused_unless_the_checkpoint_covers_it()
    {
        var (_, first) = await TwoSegmentsDamagedAt20Async();

        var e = Assert.Throws<LogDamagedException>(() => DurableLog.Open(new DurableLogOptions { Directory = _dir }, coveredThrough: 30));
        Assert.Contains("entries #20..#49 cannot be read", e.Message, StringComparison.Ordinal);

        // A checkpoint through #55 covers the whole damaged segment: nothing is missing, and it is deleted.
        await using (var covered = DurableLog.Open(new DurableLogOptions { Directory = _dir }, coveredThrough: 55))
        {
            Assert.Equal(24, covered.Recovered.Count);
            Assert.Equal(80, covered.Next);
        }

        Assert.False(File.Exists(first));
    }

    [Fact]
    public async Task Repair_cuts_the_damaged_segment_and_drops_the_ones_after_it_and_refuses_a_log_in_use()
    {
        var (entries, first) = await TwoSegmentsDamagedAt20Async();

        var plan = DurableLog.Repair(_dir, coveredThrough: -1, apply: false);
        Assert.Equal("entries #20..#79", plan.Lost);
        Assert.Equal(2, plan.Actions.Count);
        Assert.Equal(2, Directory.GetFiles(_dir).Length);

        DurableLog.Repair(_dir, coveredThrough: -1, apply: true);
        Assert.Equal([Path.GetFileName(first)], Directory.GetFiles(_dir).Select(Path.GetFileName));
        await using var reopened = Open();
        Assert.Equal(20, reopened.Recovered.Count);

        // The log is open now, as in a running resh: a repair that would change it is refused.
        var damaged = await File.ReadAllBytesAsync(first);
        damaged[OffsetOf(entries, 5) + 30] ^= 0x01;
        await File.WriteAllBytesAsync(first, damaged);
        var refused = Assert.Throws<IOException>(() => DurableLog.Repair(_dir, coveredThrough: -1, apply: true));
        Assert.Contains("running resh", refused.Message, StringComparison.Ordinal);
        Assert.Equal(damaged, await File.ReadAllBytesAsync(first));
    }

    /// <summary>80 entries in two segments (#0..#49, #50..#79), with a bit flipped in the body of #20.</summary>
    private async Task<(List<LogEntry> Entries, string First)> TwoSegmentsDamagedAt20Async()
    {
        var entries = Sample(80).ToList();
        await WriteAsync(entries[..50], entries[50..]);
        var first = Path.Combine(_dir, "ordered-00000000000000000000.log");
        var bytes = await File.ReadAllBytesAsync(first);
        bytes[OffsetOf(entries, 20) + 30] ^= 0x01;
        await File.WriteAllBytesAsync(first, bytes);
        return (entries, first);
    }

    /// <summary>Writes the entries, one segment per batch.</summary>
    private async Task WriteAsync(params IReadOnlyList<LogEntry>[] segments)
    {
        var log = new OrderedLog();
        await using var durable = Open();
        log.AttachDurable(durable);
        for (var i = 0; i < segments.Length; i++)
        {
            if (i > 0)
            {
                // Rolls to a new segment at the next write; keeps the old one (it holds more than #0).
                durable.TruncateThrough(0);
                var count = i + 1;
                await Tools.WaitUntilAsync(() => durable.SegmentCount == count, TimeSpan.FromSeconds(10));
            }

            await AppendAsync(log, durable, segments[i]);
        }
    }

    /// <summary>Byte offset of record <paramref name="index"/> in a segment that starts with <paramref name="entries"/>[0].</summary>
    private static int OffsetOf(IReadOnlyList<LogEntry> entries, int index) =>
        entries.Take(index).Sum(e => 12 + LogEntryCodec.EncodedLength(e));

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

    [Fact]
    public async Task A_checkpoint_lets_covered_segments_go_and_reopening_returns_only_what_follows_it()
    {
        var log = new OrderedLog();
        await using (var durable = Open())
        {
            log.AttachDurable(durable);
            await AppendAsync(log, durable, Sample(100));

            // A checkpoint covers #0..#59: a new segment starts at the next write, and the first one goes once
            // everything in it is covered.
            durable.TruncateThrough(59);
            await Tools.WaitUntilAsync(() => durable.SegmentCount == 2, TimeSpan.FromSeconds(10));
            await AppendAsync(log, durable, Sample(50));
            durable.TruncateThrough(120);
            await Tools.WaitUntilAsync(() => File.Exists(Path.Combine(_dir, "ordered-00000000000000000150.log")) && durable.SegmentCount == 2, TimeSpan.FromSeconds(10));
            await AppendAsync(log, durable, Sample(10));
        }

        var names = Directory.GetFiles(_dir).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["ordered-00000000000000000100.log", "ordered-00000000000000000150.log"], names);

        await using var reopened = DurableLog.Open(new DurableLogOptions { Directory = _dir }, coveredThrough: 120);
        Assert.Equal(121, reopened.RecoveredFrom);
        Assert.Equal(39, reopened.Recovered.Count);
        Assert.Equal(160, reopened.Next);
        Assert.Equal(log[121].Payload.ToArray(), reopened.Recovered[0].Payload.ToArray());
        Assert.Equal(log[159].Payload.ToArray(), reopened.Recovered[^1].Payload.ToArray());
    }

    [Fact]
    public async Task A_checkpoint_newer_than_the_whole_log_starts_a_fresh_segment_after_it()
    {
        var log = new OrderedLog();
        await using (var durable = Open())
        {
            log.AttachDurable(durable);
            await AppendAsync(log, durable, Sample(20));
        }

        await using (var reopened = DurableLog.Open(new DurableLogOptions { Directory = _dir }, coveredThrough: 499))
        {
            Assert.Empty(reopened.Recovered);
            Assert.Equal(500, reopened.Next);
        }

        Assert.Equal(["ordered-00000000000000000500.log"], Directory.GetFiles(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_log_that_starts_after_the_checkpoint_is_refused_with_what_is_missing()
    {
        var log = new OrderedLog();
        await using (var durable = Open())
        {
            log.AttachDurable(durable);
            await AppendAsync(log, durable, Sample(100));
            durable.TruncateThrough(99);
            await Tools.WaitUntilAsync(() => Directory.GetFiles(_dir).Select(Path.GetFileName).SequenceEqual(["ordered-00000000000000000100.log"]), TimeSpan.FromSeconds(10));
            await AppendAsync(log, durable, Sample(5));
        }

        // The log now starts at #100: a store without the checkpoint that covered #0..#99 cannot be resumed.
        var e = Assert.Throws<InvalidDataException>(() => DurableLog.Open(new DurableLogOptions { Directory = _dir }, coveredThrough: 10));
        Assert.Contains("#11..#99 are missing", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_segment_after_a_gap_is_refused_too()
    {
        await using (var durable = DurableLog.Open(new DurableLogOptions { Directory = _dir }, coveredThrough: 99))
        {
            Assert.Equal(100, durable.Next);
        }

        var e = Assert.Throws<InvalidDataException>(() => DurableLog.Open(new DurableLogOptions { Directory = _dir }, coveredThrough: 10));
        Assert.Contains("#11..#99 are missing", e.Message, StringComparison.Ordinal);
    }
}
