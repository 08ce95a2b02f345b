using Resh.Memory;

namespace Resh.Tests.Memory;

/// <summary>What every ordered log of the memory must do; run against each implementation.</summary>
public abstract class CommitLogContract
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    protected abstract Task<ICommitLog> CreateAsync();

    [Fact]
    public async Task Appends_come_back_in_order_with_growing_positions()
    {
        await using var log = await CreateAsync();
        var positions = new List<long>();
        for (var i = 0; i < 20; i++)
        {
            positions.Add(await log.AppendAsync([(byte)i], CancellationToken.None).WaitAsync(Timeout));
        }

        Assert.Equal(positions.Order(), positions);
        Assert.Equal(positions.Count, positions.Distinct().Count());
        Assert.Equal(positions[^1], await log.HeadAsync(CancellationToken.None).WaitAsync(Timeout));

        var read = await ReadAsync(log, positions[0] - 1, 20);
        Assert.Equal(positions, read.Select(r => r.Position));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (byte)i), read.Select(r => r.Bytes[0]));

        var later = await ReadAsync(log, positions[9], 10);
        Assert.Equal(positions[10..], later.Select(r => r.Position));
    }

    [Fact]
    public async Task A_reader_waits_for_records_appended_after_it_started()
    {
        await using var log = await CreateAsync();
        var head = await log.HeadAsync(CancellationToken.None).WaitAsync(Timeout);
        var reading = ReadAsync(log, head, 3);
        var appended = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            appended.Add(await log.AppendAsync([7, (byte)i], CancellationToken.None).WaitAsync(Timeout));
        }

        var read = await reading.WaitAsync(Timeout);
        Assert.Equal(appended, read.Select(r => r.Position));
    }

    [Fact]
    public async Task Concurrent_appenders_get_one_order_that_every_reader_sees()
    {
        await using var log = await CreateAsync();
        var head = await log.HeadAsync(CancellationToken.None).WaitAsync(Timeout);
        var appends = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 10; i++)
            {
                await log.AppendAsync([(byte)w, (byte)i], CancellationToken.None);
            }
        }));
        await Task.WhenAll(appends).WaitAsync(Timeout);
        var first = await ReadAsync(log, head, 40);
        var second = await ReadAsync(log, head, 40);
        Assert.Equal(first.Select(r => (r.Position, r.Bytes[0], r.Bytes[1])), second.Select(r => (r.Position, r.Bytes[0], r.Bytes[1])));
        foreach (var writer in first.GroupBy(r => r.Bytes[0]))
        {
            // One appender's records keep its order.
            Assert.Equal(Enumerable.Range(0, 10).Select(i => (byte)i), writer.Select(r => r.Bytes[1]));
        }
    }

    [Fact]
    public async Task Reading_from_before_a_truncation_says_so()
    {
        await using var log = await CreateAsync();
        var positions = new List<long>();
        for (var i = 0; i < 5; i++)
        {
            positions.Add(await log.AppendAsync([(byte)i], CancellationToken.None).WaitAsync(Timeout));
        }

        await log.TruncateAsync(positions[2], CancellationToken.None).WaitAsync(Timeout);

        // Truncating again, up to the same position or one before it, changes nothing and is no error.
        await log.TruncateAsync(positions[2], CancellationToken.None).WaitAsync(Timeout);
        await log.TruncateAsync(positions[1], CancellationToken.None).WaitAsync(Timeout);
        var after = await ReadAsync(log, positions[2], 2);
        Assert.Equal(positions[3..], after.Select(r => r.Position));
        var e = await Assert.ThrowsAsync<LogTruncatedException>(() => ReadAsync(log, positions[0] - 1, 5).WaitAsync(Timeout));
        Assert.Equal(positions[2], e.TruncatedTo);
    }

    private static async Task<List<LogRecord>> ReadAsync(ICommitLog log, long after, int count)
    {
        using var cts = new CancellationTokenSource(Timeout);
        var records = new List<LogRecord>();
        await foreach (var record in log.ReadAsync(after, cts.Token))
        {
            records.Add(record);
            if (records.Count == count)
            {
                break;
            }
        }

        return records;
    }
}
