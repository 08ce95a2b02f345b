using System.Text;
using Microsoft.Extensions.Time.Testing;
using Resh.Checkpoints;
using Resh.Diagnostics;
using Resh.Group;
using Resh.Modes;
using Resh.Ordering;
using Resh.Protocols.Resp;
using Resh.Tests.Domains;

namespace Resh.Tests.Group;

/// <summary>
/// A real <see cref="ReplicaGroup"/> on in-process domains (<see cref="FakeDomain"/>) and a fake clock: what the
/// group decides by time happens only when a test advances the clock, so a test walks a fault through its steps.
/// Disposing it stops the group and kills every domain, also after a failed assertion.
/// </summary>
internal sealed class GroupHarness : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private readonly TempDir _temp;
    private readonly Dictionary<long, bool> _opened = [];

    private GroupHarness(TempDir temp, GroupOptions options, IGroupPolicy policy, CheckpointStore? store)
    {
        _temp = temp;
        Options = options;
        Store = store;
        Log = new OrderedLog(Clock);
        Group = new ReplicaGroup(options, policy, new RespProtocol(new RespOptions { Clock = Clock }), new LocalSequencer(Log), Domains.Create, new ReshMetrics(), Events, store: store, clock: Clock);
    }

    /// <summary>The checkpoint store, when the group was started with checkpoints.</summary>
    public CheckpointStore? Store { get; }

    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.FromUnixTimeSeconds(1_800_000_000));

    public FakeDomainFactory Domains { get; } = new();

    public EventJournal Events { get; } = new();

    public GroupOptions Options { get; }

    public OrderedLog Log { get; }

    public ReplicaGroup Group { get; }

    /// <summary>A started group of <paramref name="replicas"/> fake replicas r1..rN.</summary>
    public static async Task<GroupHarness> StartAsync(ReplicationMode mode, int faults, int replicas, Action<ModeOptions>? configure = null, IGroupPolicy? policy = null, CheckpointOptions? checkpoint = null)
    {
        var temp = new TempDir();
        var options = new GroupOptions
        {
            Faults = faults,
            Replicas = [.. Enumerable.Range(1, replicas).Select(i => new ReplicaSpec($"r{i}", "fake {port}"))],
            ReplyTimeout = TimeSpan.FromSeconds(5),
            StartupTimeout = TimeSpan.FromSeconds(10),
            StateDirectory = temp.Path,
            Checkpoint = checkpoint,
        };
        var modeOptions = new ModeOptions { Mode = mode };
        configure?.Invoke(modeOptions);
        var store = checkpoint is null ? null : await CheckpointStore.OpenAsync(Path.Combine(temp.Path, "store"), new StoreOptions(), CancellationToken.None);
        var harness = new GroupHarness(temp, options, policy ?? ModePolicies.For(modeOptions), store);
        try
        {
            await harness.Group.StartAsync(CancellationToken.None).WaitAsync(Timeout);
            return harness;
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }
    }

    /// <summary>Submits one RESP command of <paramref name="session"/> (opened first if new); the task completes with the released reply.</summary>
    public Task<string> Send(string command, long session = 1)
    {
        if (_opened.TryAdd(session, true))
        {
            Log.Append(new LogEntry(LogEventKind.Open, session, 0, ReadOnlyMemory<byte>.Empty, 0));
        }

        var parts = command.Split(' ');
        var payload = new StringBuilder($"*{parts.Length}\r\n");
        foreach (var part in parts)
        {
            payload.Append(System.Globalization.CultureInfo.InvariantCulture, $"${part.Length}\r\n{part}\r\n");
        }

        var sink = new Sink();
        Log.Append(new LogEntry(LogEventKind.Request, session, 0, Encoding.UTF8.GetBytes(payload.ToString()), 1, origin: sink));
        return sink.Reply.Task;
    }

    /// <summary>Sends and waits (bounded) for the reply.</summary>
    public Task<string> RequestAsync(string command, long session = 1) => Send(command, session).WaitAsync(Timeout);

    /// <summary>
    /// Moves the fake clock forward in steps shorter than half the reply timeout (a longer jump would make the
    /// group's check "late", and a late check judges nobody) until <paramref name="condition"/> holds; fails if it
    /// does not within <paramref name="limit"/> of fake time or <see cref="Timeout"/> of real time.
    /// </summary>
    public async Task AdvanceUntilAsync(Func<bool> condition, TimeSpan limit, string what, TimeSpan? step = null)
    {
        var by = step ?? Options.ReplyTimeout / 20;
        var advanced = TimeSpan.Zero;
        var real = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(advanced <= limit && real.Elapsed < Timeout, $"{what}: not within {limit.TotalSeconds:0.#}s of group time ({advanced.TotalSeconds:0.#}s advanced); events: {EventsText()}");
            Clock.Advance(by);
            advanced += by;

            // Lets the timer's continuation and the replies in flight run before the next step.
            await Task.Delay(5);
        }
    }

    /// <summary>Waits (real time) until <paramref name="condition"/> holds, with the clock standing still.</summary>
    public async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var real = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(real.Elapsed < Timeout, $"{what}: not within {Timeout.TotalSeconds:0}s; events: {EventsText()}");
            await Task.Delay(5);
        }
    }

    /// <summary>
    /// Waits (real time, the clock standing still) until generation <paramref name="generation"/> of a rebuilt replica
    /// has replayed the whole log, so that advancing the clock afterwards lets it join rather than judging a replay
    /// that a loaded machine made slow.
    /// </summary>
    public Task WaitReplayedAsync(string replica, int generation) =>
        WaitUntilAsync(() => Replica(replica) is var r && r.Generation == generation && r.Applied >= Log.Head, $"{replica} generation {generation} replayed the log");

    public IReadOnlyList<ReshEvent> Named(string name, string? replica = null) =>
        [.. Events.Since().Where(e => e.Name == name && (replica is null || e.Replica == replica))];

    public ReplicaStatus Replica(string id) => Group.Status().Replicas.Single(r => r.Id == id);

    /// <summary>Writes straight into one replica's state, past the group: a corrupted replica.</summary>
    public async Task CorruptAsync(string replica, string key, string value)
    {
        var endPoint = Domains.Newest(replica)?.ServerEndPoint ?? throw new InvalidOperationException($"{replica} has no domain");
        await using var client = await SampleKv.RespTestClient.ConnectAsync(endPoint);
        Assert.Equal("+OK\r\n", await client.CommandAsync("SET", key, value));
    }

    public string EventsText() => string.Join(" | ", Events.Since().Select(e => $"{e.Name} {e.Replica}: {e.Detail}"));

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Group.DisposeAsync();
        }
        finally
        {
            await Domains.DisposeAsync();
            if (Store is not null)
            {
                await Store.DisposeAsync();
            }

            _temp.Dispose();
        }
    }

    private sealed class Sink : IReplySink
    {
        public TaskCompletionSource<string> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Complete(ReadOnlyMemory<byte> reply) => Reply.TrySetResult(Encoding.UTF8.GetString(reply.Span));
    }
}
