using System.Text;
using Resh.Ordering;

namespace Resh.Tests.Ordering;

/// <summary>
/// What every sequencer must do; each implementation gets a subclass (the local one here, the etcd one in the
/// integration tests, against a real etcd; this file is compiled into both projects).
/// </summary>
public abstract class SequencerContractTests
{
    /// <summary>A started sequencer, ready to take submissions, appending to <paramref name="log"/>.</summary>
    protected abstract Task<ISequencer> CreateAsync(OrderedLog log);

    private sealed class Sink : IReplySink
    {
        public void Complete(ReadOnlyMemory<byte> reply)
        {
        }
    }

    [Fact]
    public async Task Appends_every_submitted_event_once_with_its_origin()
    {
        var log = new OrderedLog();
        await using var sequencer = await CreateAsync(log).WaitAsync(TimeSpan.FromSeconds(60));
        var sink = new Sink();
        var entry = new LogEntry(LogEventKind.Request, 7, 3, Encoding.ASCII.GetBytes("x"), 1, origin: sink);

        var seq = await sequencer.SubmitAsync(entry).AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(1, log.Count);
        Assert.Same(entry, log[seq]);
        Assert.Same(sink, log[seq].Origin);
        Assert.Equal(seq, entry.Sequence);
    }

    [Fact]
    public async Task Keeps_the_submission_order_of_each_session_under_concurrency()
    {
        var log = new OrderedLog();
        await using var sequencer = await CreateAsync(log).WaitAsync(TimeSpan.FromSeconds(60));
        const int Sessions = 8;
        const int PerSession = 500;
        await Task.WhenAll(Enumerable.Range(0, Sessions).Select(s => Task.Run(async () =>
        {
            for (var i = 0; i < PerSession; i++)
            {
                await sequencer.SubmitAsync(new LogEntry(LogEventKind.Request, s, 0, BitConverter.GetBytes(i), 1));
            }
        }))).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(Sessions * PerSession, log.Count);
        var next = new int[Sessions];
        for (long seq = 0; seq < log.Count; seq++)
        {
            var e = log[seq];
            Assert.Equal(seq, e.Sequence);
            Assert.Equal(next[e.SessionId]++, BitConverter.ToInt32(e.Payload.Span));
        }
    }

    [Fact]
    public async Task Refuses_an_entry_twice()
    {
        var log = new OrderedLog();
        await using var sequencer = await CreateAsync(log).WaitAsync(TimeSpan.FromSeconds(60));
        var entry = new LogEntry(LogEventKind.Open, 1, 0, ReadOnlyMemory<byte>.Empty, 0);
        await sequencer.SubmitAsync(entry).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await sequencer.SubmitAsync(entry).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, log.Count);
    }
}
