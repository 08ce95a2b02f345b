using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Resh.Diagnostics;

/// <summary>The instruments of one gateway. Names follow Prometheus conventions once exported (resh_ prefix, base units).</summary>
public sealed class ReshMetrics : IDisposable
{
    public const string MeterName = "Resh";

    private readonly Meter _meter;
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _replyLatency;
    private readonly Counter<long> _mismatches;
    private readonly Counter<long> _recoveries;
    private readonly Counter<long> _suspicions;
    private readonly UpDownCounter<long> _sessions;
    private readonly Counter<long> _clientErrors;
    private readonly Counter<long> _checkpoints;
    private readonly Histogram<double> _checkpointPause;
    private readonly Counter<long> _replayed;
    private readonly Counter<long> _activations;
    private readonly Histogram<double> _activationLatency;
    private readonly Counter<long> _passiveUpdates;
    private readonly Counter<long> _passiveUpdated;
    private readonly Counter<long> _passiveTransferred;
    private readonly Counter<long> _rejuvenations;
    private readonly Histogram<double> _epochs;
    private readonly Histogram<double> _commitDelay;
    private readonly Counter<long> _failovers;
    private readonly Counter<long> _verifiedKeys;
    private readonly Counter<long> _migrationRounds;
    private readonly Counter<long> _migrationBytes;
    private readonly Histogram<double> _migrationRoundLength;

    public ReshMetrics(IMeterFactory? factory = null)
    {
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _requests = _meter.CreateCounter<long>("resh.requests", "{request}", "Client requests by outcome: decided, disagreed, local (answered by the gateway), rejected.");
        _replyLatency = _meter.CreateHistogram<double>("resh.reply.latency", "s", "Time from a request's place in the log to its voted reply.");
        _mismatches = _meter.CreateCounter<long>("resh.replica.mismatches", "{reply}", "Replies that differed from the decided reply, per replica.");
        _recoveries = _meter.CreateCounter<long>("resh.replica.recoveries", "{recovery}", "Replicas rebuilt and rejoined, per replica.");
        _suspicions = _meter.CreateCounter<long>("resh.replica.suspicions", "{suspicion}", "Replicas taken out of voting, per replica and reason.");
        _sessions = _meter.CreateUpDownCounter<long>("resh.sessions.active", "{session}", "Open client sessions.");
        _checkpoints = _meter.CreateCounter<long>("resh.checkpoints", "{checkpoint}", "Service checkpoints by outcome: stored, failed.");
        _checkpointPause = _meter.CreateHistogram<double>("resh.checkpoint.pause", "s", "Per replica: from sending a checkpoint's flush to having captured its files; the replica applies nothing meanwhile.");
        _replayed = _meter.CreateCounter<long>("resh.replica.replayed", "{entry}", "Log entries replayed by rebuilt replicas before they voted again.");
        _activations = _meter.CreateCounter<long>("resh.activations", "{activation}", "Mode spare: the passive replicas were woken, by reason: mismatch, timeout, missing.");
        _activationLatency = _meter.CreateHistogram<double>("resh.activation.latency", "s", "Mode spare: from waking the passive replicas to the decision they made possible.");
        _passiveUpdates = _meter.CreateCounter<long>("resh.passive.updates", "{update}", "Mode spare: passive replicas thawed, brought up to date and frozen again, by method: replay, state.");
        _passiveUpdated = _meter.CreateCounter<long>("resh.passive.updated", "{entry}", "Mode spare: log entries passive replicas were brought past in their updates, by method: replay, state.");
        _passiveTransferred = _meter.CreateCounter<long>("resh.passive.transferred", "{key}", "Mode spare: pieces of state (keys) written into passive replicas instead of replaying the writes that changed them.");
        _rejuvenations = _meter.CreateCounter<long>("resh.rejuvenations", "{rejuvenation}", "Mode spare: proactive recoveries (a passive replica activated, the oldest active domain replaced).");
        _epochs = _meter.CreateHistogram<double>("resh.epoch.length", "s", "Mode remus: time each shipped epoch covered.");
        _commitDelay = _meter.CreateHistogram<double>("resh.output.commit.delay", "s", "How long a decided reply waited for output commit (the backup's acknowledgement, the disk).");
        _verifiedKeys = _meter.CreateCounter<long>("resh.verify.keys", "{key}", "Keys changed since the last round compared across the voting replicas between checkpoints (group option verify-every).");
        _failovers = _meter.CreateCounter<long>("resh.failovers", "{failover}", "Mode remus: the backup took over as primary.");
        _migrationRounds = _meter.CreateCounter<long>("resh.migration.rounds", "{round}", "resh migrate: pre-copy rounds done.");
        _migrationBytes = _meter.CreateCounter<long>("resh.migration.sent", "By", "resh migrate: bytes sent to the target in pre-copy rounds (checkpoint files and log).");
        _migrationRoundLength = _meter.CreateHistogram<double>("resh.migration.round.length", "s", "resh migrate: how long each pre-copy round took.");
        _clientErrors = _meter.CreateCounter<long>("resh.client.errors", "{error}", "Client connections closed for a protocol error or a limit.");
    }

    public Meter Meter => _meter;

    public void Request(string outcome) => _requests.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void ReplyLatency(long appendedTimestamp) => _replyLatency.Record(Stopwatch.GetElapsedTime(appendedTimestamp).TotalSeconds);

    public void Mismatch(string replica) => _mismatches.Add(1, new KeyValuePair<string, object?>("replica", replica));

    public void Recovery(string replica) => _recoveries.Add(1, new KeyValuePair<string, object?>("replica", replica));

    public void Suspicion(string replica, string reason) =>
        _suspicions.Add(1, new KeyValuePair<string, object?>("replica", replica), new KeyValuePair<string, object?>("reason", reason));

    public void SessionOpened() => _sessions.Add(1);

    public void SessionClosed() => _sessions.Add(-1);

    public void ClientError() => _clientErrors.Add(1);

    public void VerifiedKeys(long keys) => _verifiedKeys.Add(keys);

    public void Checkpoint(string outcome) => _checkpoints.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void CheckpointPause(TimeSpan pause) => _checkpointPause.Record(pause.TotalSeconds);

    public void Replayed(long entries) => _replayed.Add(entries);

    public void Activation(string reason) => _activations.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void ActivationLatency(TimeSpan latency) => _activationLatency.Record(latency.TotalSeconds);

    /// <summary>One passive replica updated by <paramref name="method"/> (replay, state) over <paramref name="entries"/> log entries, <paramref name="keys"/> of its state transferred.</summary>
    public void PassiveUpdate(string method, long entries, long keys)
    {
        var tag = new KeyValuePair<string, object?>("method", method);
        _passiveUpdates.Add(1, tag);
        _passiveUpdated.Add(entries, tag);
        if (keys > 0)
        {
            _passiveTransferred.Add(keys);
        }
    }

    public void Rejuvenation() => _rejuvenations.Add(1);

    public void Epoch(TimeSpan length) => _epochs.Record(length.TotalSeconds);

    public void CommitDelay(TimeSpan delay) => _commitDelay.Record(delay.TotalSeconds);

    public void Failover() => _failovers.Add(1);

    public void MigrationRound(long bytes, double seconds)
    {
        _migrationRounds.Add(1);
        _migrationBytes.Add(bytes);
        _migrationRoundLength.Record(seconds);
    }

    public void Dispose() => _meter.Dispose();
}
