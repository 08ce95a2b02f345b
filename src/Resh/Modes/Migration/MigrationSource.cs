using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Resh.Composition;
using Resh.Group;
using Resh.Remus;

namespace Resh.Migration;

/// <summary>
/// One pre-copy round: the log entries it brought the target (the checkpoint first, in round 1), their bytes on the link,
/// and how long it took. The link ships all the time; a round is the stretch of the log it had to bring over.
/// </summary>
public sealed record MigrationRound(int Number, long Entries, long Bytes, double Milliseconds);

/// <summary>What /status and `resh migrate` show of a migration.</summary>
public sealed record MigrationStatus(string Target, string Phase, IReadOnlyList<MigrationRound> Rounds, string? Ended, long? LastDelta, long BytesSent) : ModeStatus;

/// <summary>
/// The source's side of `resh migrate`: a backup link to the target (`resh receive`) that gates no reply (the source
/// stays the service until the handover), watched in pre-copy rounds. Round 1 brings the target to the log's head at
/// its start (the newest checkpoint first, if the log no longer holds everything); each following round to the head
/// at its own start, i.e. what was written during the round before. The push phase ends when a round leaves at most
/// <see cref="MigrationOptions.DeltaThreshold"/> entries, when the delta stopped shrinking, or after the maximum of
/// rounds; then the host stops as in a switchover: the clients are drained, the rest is shipped, and the target is
/// told to take over at exactly the next position.
/// </summary>
public sealed partial class MigrationSource : IAsyncDisposable
{
    private readonly IModeHost _host;
    private readonly ReplicaGroup _group;
    private readonly MigrationOptions _options;
    private readonly ILogger _logger;
    private readonly BackupLink _link;
    private readonly List<MigrationRound> _rounds = [];
    private volatile string _phase = "connecting";
    private string? _ended;
    private long? _lastDelta;

    /// <param name="term">The link's term (mode remus: the primary's, so that the target's term after the takeover is newer than any this pair used).</param>
    public MigrationSource(IModeHost host, ReplicaGroup group, MigrationOptions options, IPEndPoint target, ILogger logger, ulong term = 1)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(options);
        _host = host;
        _group = group;
        _options = options;
        _logger = logger;
        Target = target;

        // Not a commit gate: nothing waits for the target. Its checkpoint hooks keep the log from being cut below what
        // the target still needs.
        _link = new BackupLink(options.Link(target), term, host.Log, () => group.NewestCheckpoint, host.Store, host.Metrics, logger, unprotected: true);
        group.AddCheckpointHooks(_link);
    }

    public IPEndPoint Target { get; }

    /// <summary>True once the push phase ended and the target holds all but the last delta: the stop-and-copy may start.</summary>
    public bool Converged { get; private set; }

    public MigrationStatus Describe()
    {
        lock (_rounds)
        {
            return new MigrationStatus(Target.ToString(), _phase, [.. _rounds], _ended, _lastDelta, _link.BytesShipped);
        }
    }

    /// <summary>Runs the pre-copy rounds; returns why the push phase ended. Throws when the target cannot be brought up to date.</summary>
    public async Task<string> PreCopyAsync(CancellationToken cancellationToken)
    {
        var linkStarted = Stopwatch.GetTimestamp();
        _link.Start();
        var waited = Stopwatch.StartNew();
        // Accepted: the target said Welcome (a large checkpoint may take long to send after that; the round timeout bounds it).
        while (_link.WelcomedBy is null && _link.Backup is null)
        {
            if (_link.Fenced.IsCompleted)
            {
                throw new InvalidOperationException($"the target refused the migration: {await _link.Fenced}");
            }

            if (waited.Elapsed > _options.LinkTimeout * 2)
            {
                throw new TimeoutException($"the target {Target} did not accept the link within {(_options.LinkTimeout * 2).TotalSeconds:0.#}s; is `resh receive --listen {Target}` running there with this configuration (and the same migration.tls-certificate)?");
            }

            await Task.Delay(10, cancellationToken);
        }

        _phase = "pre-copy";

        // Round 1 counts from what the target held when it attached: the checkpoint (if it needed one) and the log after it.
        var from = _link.AttachedAt;
        var previous = long.MaxValue;
        var stalled = 0;
        for (var number = 1; ; number++)
        {
            var started = number == 1 ? linkStarted : Stopwatch.GetTimestamp();
            var head = _host.Log.Count;

            // A round ends when the target holds the log up to its start. Round 1 also waits until the target's
            // replicas applied it (they restore the checkpoint first: a target still restoring is not ready). Later
            // rounds do not: the target applies every apply-interval, and a round that waited for that would never be
            // shorter than the interval, nor its delta smaller than what clients write meanwhile (it hovered there
            // until the round limit); the push phase waits for it once, at its end.
            await WaitForTargetAsync(number, head, applied: number == 1, started, cancellationToken);
            var bytes = LogBytes(Math.Max(from, _link.CheckpointSentAt + 1), head) + (number == 1 ? _link.CheckpointBytes : 0);
            var round = new MigrationRound(number, head - from, bytes, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            lock (_rounds)
            {
                _rounds.Add(round);
            }

            _host.Metrics.MigrationRound(round.Bytes, round.Milliseconds / 1000);
            RoundDone(_logger, round.Number, round.Entries, round.Bytes, round.Milliseconds);
            _host.Events.Record("+migration-round", null, string.Create(CultureInfo.InvariantCulture, $"round {round.Number} to {Target}: {round.Entries} entries, {round.Bytes} bytes in {round.Milliseconds:0} ms"));

            var delta = _host.Log.Count - head;
            stalled = delta >= previous ? stalled + 1 : 0;
            var ended = delta <= _options.DeltaThreshold ? $"the delta is {delta} entries, at most migration.delta-threshold ({_options.DeltaThreshold})"
                : stalled >= _options.StallRounds ? $"the delta ({delta} entries) did not shrink for {stalled} rounds (migration.stall-rounds)"
                : number >= _options.MaxRounds ? $"migration.max-rounds ({_options.MaxRounds}) reached with a delta of {delta} entries"
                : null;
            if (ended is not null)
            {
                lock (_rounds)
                {
                    _ended = ended;
                    _phase = "stop-and-copy";
                }

                // The target's replicas close to the head before the stop-and-copy: little to replay at the takeover.
                await WaitForTargetAsync(number, head, applied: true, Stopwatch.GetTimestamp(), cancellationToken);
                Converged = true;
                PushEnded(_logger, Target.ToString(), ended);
                return ended;
            }

            (previous, from) = (delta, head);
        }
    }

    /// <summary>
    /// Waits until the target holds the log up to <paramref name="head"/> (and, with <paramref name="applied"/>, its
    /// replicas applied it; the target's heartbeats say how far); fails when it refuses, is gone, or takes longer than a round may.
    /// </summary>
    private async Task WaitForTargetAsync(int number, long head, bool applied, long started, CancellationToken cancellationToken)
    {
        var lost = 0L;
        while (_link.AckedCount < head || (applied && _link.PeerPosition < head))
        {
            if (_link.Fenced.IsCompleted)
            {
                throw new InvalidOperationException($"the target refused the migration: {await _link.Fenced}");
            }

            // A target that went away (it failed to start its replicas, its host is gone) ends the migration now.
            lost = _link.WelcomedBy is null && _link.Backup is null ? (lost == 0 ? Stopwatch.GetTimestamp() : lost) : 0;
            if (lost != 0 && Stopwatch.GetElapsedTime(lost) > _options.LinkTimeout * 2)
            {
                throw new InvalidOperationException($"the link to the target {Target} is down since {Stopwatch.GetElapsedTime(lost).TotalSeconds:0.#}s (see the target's log: did resh receive stop?)");
            }

            if (Stopwatch.GetElapsedTime(started) > _options.RoundTimeout)
            {
                throw new TimeoutException($"pre-copy round {number} did not bring the target to #{head - 1} within {_options.RoundTimeout.TotalSeconds:0}s (it holds up to #{_link.AckedCount - 1}, its replicas applied up to #{_link.PeerPosition - 1}): the target takes the log slower than it is written, or the link is down");
            }

            await Task.Delay(5, cancellationToken);
        }
    }

    /// <summary>
    /// The stop-and-copy's end, with the clients drained: the release command, then (within <paramref name="timeout"/>)
    /// the rest of the log, and the target is told to take over; recorded as an event and a log line. False when it could
    /// not be told.
    /// </summary>
    public async Task<bool> HandOverAsync(TimeSpan timeout)
    {
        _lastDelta = _host.Log.Count - _link.AckedCount;
        await CommandRunner.RunAsync(_options.ReleaseCommand, "migration.release-command", _logger);
        TargetAddress = await _link.HandOverAsync(timeout);
        var handed = TargetAddress is not null;
        _phase = handed ? "handed over" : "handover failed";
        if (handed)
        {
            // The target serves now: the link must not dial it again.
            await DisposeAsync();
        }

        var status = Describe();
        _host.Events.Record(handed ? "+handed-over" : "+handover-failed", null, handed
            ? string.Create(CultureInfo.InvariantCulture, $"migrated to {TargetAddress}: {status.Rounds.Count} pre-copy rounds, {status.Rounds.Sum(r => r.Bytes)} bytes, last delta {status.LastDelta} entries; it takes over now")
            : "the target could not be told; it does not serve (the service stops here: start it again, or migrate again)");
        HandedOver(_logger, Target.ToString(), handed, status.LastDelta ?? 0);
        return handed;
    }

    /// <summary>The target told to take over (HOST:PORT), once it was.</summary>
    public string? TargetAddress { get; private set; }

    /// <summary>The size of log entries [from, to) as the link encodes them.</summary>
    private long LogBytes(long from, long to)
    {
        var batch = new Resh.Ordering.LogEntry[1024];
        var total = 0L;
        for (var next = Math.Max(from, _host.Log.First); next < to;)
        {
            var n = _host.Log.Read(next, batch.AsSpan(0, (int)Math.Min(batch.Length, to - next)));
            if (n == 0)
            {
                break;
            }

            total += Resh.Ordering.LogEntryCodec.BatchLength(new ArraySegment<Resh.Ordering.LogEntry>(batch, 0, n));
            next += n;
        }

        return total;
    }

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _link.DisposeAsync();
        _group.RemoveCheckpointHooks(_link);
    }

    /// <summary>
    /// `resh migrate` on the source, for any mode's hosting: the pre-copy rounds, then the host's switchover (the
    /// stop-and-copy, which the hosting's stop completes with <see cref="HandOverAsync"/>). When the target cannot be
    /// brought up to date, the source is disposed, <paramref name="failed"/> gets its last status, the failure is
    /// recorded, and the exception goes on to the caller; the service goes on here, untouched.
    /// </summary>
    public async Task<MigrationStatus> RunAsync(Action<MigrationStatus> failed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(failed);
        _host.Events.Record("+migration-started", null, $"to {Target}");
        try
        {
            await PreCopyAsync(cancellationToken);
            if (_host.RequestSwitchover() is { } refused)
            {
                throw new InvalidOperationException($"the stop-and-copy could not start: {refused}");
            }

            return Describe();
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or OperationCanceledException)
        {
            failed(Describe() with { Phase = "failed", Ended = e.Message });
            await DisposeAsync();
            MigrationFailed(_logger, Target.ToString(), e.Message);
            _host.Events.Record("+migration-failed", null, $"to {Target}: {e.Message}; the service goes on here");
            throw;
        }
    }

    [LoggerMessage(EventId = 1604, Level = LogLevel.Information, Message = "Migration to {Target}: handed the service over (told: {Told}), last delta {Delta} entries")]
    private static partial void HandedOver(ILogger logger, string target, bool told, long delta);

    [LoggerMessage(EventId = 1603, Level = LogLevel.Warning, Message = "Migration to {Target} failed: {Reason}; the service goes on here")]
    private static partial void MigrationFailed(ILogger logger, string target, string reason);

    [LoggerMessage(EventId = 1601, Level = LogLevel.Information, Message = "Migration round {Round}: {Entries} entries, {Bytes} bytes in {Milliseconds:0} ms")]
    private static partial void RoundDone(ILogger logger, int round, long entries, long bytes, double milliseconds);

    [LoggerMessage(EventId = 1602, Level = LogLevel.Information, Message = "Migration to {Target}: pre-copy ends ({Reason}); stop-and-copy")]
    private static partial void PushEnded(ILogger logger, string target, string reason);
}
