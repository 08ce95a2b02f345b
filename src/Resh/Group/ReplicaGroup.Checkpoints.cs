using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Resh.Ordering;
using Resh.Replicas;
using Resh.Voting;

namespace Resh.Group;

/// <summary>
/// Service checkpoints. A <see cref="LogEventKind.Checkpoint"/> entry carries the service's flush (and digest)
/// commands; every replica runs them at exactly that log position (its applier holds everything after it
/// back until the files are captured), captures the files by hard link into a staging directory, and votes
/// with its replies plus the outcome of the capture (and, without a digest command, the files' SHA-256).
/// When f+1 agree, the winner's capture is stored in the background; once committed the checkpoint is
/// verified: new replicas start from it, and the log before it is truncated.
/// </summary>
public sealed partial class ReplicaGroup
{
    /// <summary>Label of a stored checkpoint: the log position it covers.</summary>
    public const string SequenceLabel = "resh.checkpoint";

    /// <summary>The label holding the digest f+1 replicas agreed on (their files' digest, or the digest command's reply).</summary>
    public const string DigestLabel = "resh.digest";

    private readonly ConcurrentDictionary<(long Sequence, int Replica), Capture> _captures = new();
    private readonly ConcurrentDictionary<long, TimeSpan> _pauses = new();
    private readonly Channel<(LogEntry Entry, Capture Capture, string Digest)> _storeJobs = Channel.CreateUnbounded<(LogEntry, Capture, string)>(new UnboundedChannelOptions { SingleReader = true });
    private Task _storer = Task.CompletedTask;
    private VerifiedCheckpoint? _newest;
    private LogEntry? _checkpointInProgress;
    private TaskCompletionSource<VerifiedCheckpoint?>? _checkpointDone;
    private long _lastCheckpointAt = -1;

    /// <summary>The log's <see cref="OrderedLog.AppendedBytes"/> when the newest checkpoint was appended (max-log-bytes counts from it).</summary>
    private long _lastCheckpointBytes;
    private long _lastCheckpointTimestamp;

    private volatile ICheckpointHooks[] _hooks = [];

    /// <summary>Adds what a mode adds to the checkpoints (see <see cref="ICheckpointHooks"/>); also while the group runs (a Remus backup that takes over).</summary>
    public void AddCheckpointHooks(ICheckpointHooks hooks)
    {
        ArgumentNullException.ThrowIfNull(hooks);
        _hooks = [.. _hooks, hooks];
    }

    /// <summary>Removes hooks added by <see cref="AddCheckpointHooks"/> (a migration that ended).</summary>
    public void RemoveCheckpointHooks(ICheckpointHooks hooks) => _hooks = [.. _hooks.Where(h => !ReferenceEquals(h, hooks))];

    /// <summary>The newest verified checkpoint, or null.</summary>
    public VerifiedCheckpoint? NewestCheckpoint
    {
        get
        {
            lock (_lock)
            {
                return _newest;
            }
        }
    }

    private string StagingDirectory => Path.Combine(_options.StateDirectory, "checkpoints");

    private void StartCheckpoints()
    {
        if (_options.Checkpoint is null)
        {
            return;
        }

        if (Directory.Exists(StagingDirectory))
        {
            Directory.Delete(StagingDirectory, recursive: true);
        }

        _storer = Task.Run(() => StoreLoopAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>
    /// Takes a checkpoint now if the log moved since the last one, and waits until it is stored (or failed).
    /// Returns the newest verified checkpoint afterwards, or null when checkpoints are off or it failed.
    /// </summary>
    public async Task<VerifiedCheckpoint?> CheckpointNowAsync(TimeSpan timeout)
    {
        if (_options.Checkpoint is null)
        {
            return null;
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                Task<VerifiedCheckpoint?>? running;
                lock (_lock)
                {
                    running = _checkpointDone?.Task;
                }

                if (running is not null)
                {
                    await running.WaitAsync(cts.Token);
                    continue;
                }

                if (!TryStartCheckpoint(force: true, out var started))
                {
                    if (FlushesRunning > 0)
                    {
                        // The last checkpoint was verified while a replica's background flush still runs (one save at
                        // a time): this one starts when it ends. Real time: it waits for the service's own work.
                        await Task.Delay(TimeSpan.FromMilliseconds(20), cts.Token);
                        continue;
                    }

                    return NewestCheckpoint;
                }

                return await started!.WaitAsync(cts.Token);
            }
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Called on every monitor tick: starts a checkpoint when one is due, and truncates the log.</summary>
    private void CheckpointTick()
    {
        if (_options.Checkpoint is null)
        {
            return;
        }

        if (_options.Checkpoint.VotesOnFiles)
        {
            ExpireFileVotes();
        }

        TryStartCheckpoint(force: false, out _);
        TruncateLog();
    }

    private bool TryStartCheckpoint(bool force, out Task<VerifiedCheckpoint?>? done)
    {
        var options = _options.Checkpoint!;
        done = null;
        LogEntry entry;
        lock (_lock)
        {
            if (_checkpointInProgress is not null || _stopping.IsCancellationRequested || _voter.VoterCount < _voter.Quorum
                || (!force && !_hooks.All(h => h.SchedulesCheckpoints)) || FlushesRunning > 0)
            {
                return false;
            }

            var since = _log.Head - _lastCheckpointAt;
            var elapsed = _clock.GetElapsedTime(_lastCheckpointTimestamp);
            // A checkpoint that f+1 flushed and split on is taken again by all even without new entries: it finds the wrong one.
            // The log's memory bound comes before the floor: at a high request rate the floor alone lets the log grow with the
            // rate. It counts what was appended since the last checkpoint (what the next one can cut), not all that is held:
            // a log held back by a lagging replica or a migration's target would otherwise start checkpoints back to back.
            var due = (since > 0 || _allFlushNext) && (force
                || (options.MaxLogBytes is { } bound && _log.AppendedBytes - _lastCheckpointBytes >= bound)
                || ((options.MinInterval is not { } floor || elapsed >= floor)
                    && ((options.EveryEntries is { } n && since >= n) || (options.Every is { } every && elapsed >= every))));
            if (!due)
            {
                return false;
            }

            var payload = _protocol.EncodeCommand(options.Flush);
            var replies = 1;
            if (options.Digest is { } digest && !options.VotesOnFiles)
            {
                payload = [.. payload, .. _protocol.EncodeCommand(digest)];
                replies = 2;
            }

            entry = new LogEntry(LogEventKind.Checkpoint, 0, 0, payload, replies);
            _checkpointInProgress = entry;
            _checkpointDone = new TaskCompletionSource<VerifiedCheckpoint?>(TaskCreationOptions.RunContinuationsAsynchronously);
            done = _checkpointDone.Task;
        }

        _ = SubmitCheckpointAsync(entry);
        return true;
    }

    private async Task SubmitCheckpointAsync(LogEntry entry)
    {
        try
        {
            var seq = await _sequencer.SubmitAsync(entry, _stopping.Token);
            lock (_lock)
            {
                _lastCheckpointAt = seq;
                _lastCheckpointTimestamp = _clock.GetTimestamp();
                _lastCheckpointBytes = _log.AppendedBytes;
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or OperationCanceledException)
        {
            FailCheckpoint(entry, $"could not append it to the log: {e.Message}");
        }
    }

    /// <summary>
    /// For a checkpoint entry's replies at one replica: captures its files (when the checkpoint is still open)
    /// and returns what the voter compares: the replies, the outcome of the capture, and without a digest
    /// command the files' SHA-256. Runs on the replica's reader loop while its applier holds back what follows.
    /// </summary>
    private byte[] CheckpointVote(Replica replica, ReplicaApplier applier, LogEntry entry, ReadOnlySpan<byte> reply, int lastReplyOffset, ReadOnlySpan<byte> normalized)
    {
        var options = _options.Checkpoint;
        string status;
        var hash = "";
        if (options is null)
        {
            status = "checkpoints are off";
        }
        else if (options.VotesOnFiles)
        {
            status = FlushForFileVote(replica, entry, reply, options);
        }
        else if (_protocol.IsErrorReply(options.Digest is null ? reply : reply[..lastReplyOffset]))
        {
            status = "flush failed";
        }
        else if (options.Digest is not null && _protocol.IsErrorReply(reply[lastReplyOffset..]))
        {
            status = "digest failed";
        }
        else
        {
            status = "ok";
            try
            {
                if (options.Digest is null)
                {
                    hash = CheckpointFiles.Hash(replica.DataDirectory, options.Files);
                }

                if (Wanted(replica, entry))
                {
                    var target = Path.Combine(StagingDirectory, entry.Sequence.ToString(CultureInfo.InvariantCulture), $"{replica.Spec.Id}.g{replica.Generation}");
                    CheckpointFiles.Capture(replica.DataDirectory, options.Files, target);
                    _captures[(entry.Sequence, replica.Index)] = new Capture(replica.Spec.Id, target, status);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A capture that was no longer needed (the checkpoint was decided meanwhile) is not a fault.
                status = _voter.Decisions.KindOf(entry.Sequence) == Decision.Pending ? $"capture failed ({e.GetType().Name})" : "ok";
                GroupLog.CaptureFailed(_logger, replica.Spec.Id, entry.Sequence, e.Message);
            }
        }

        if (status != "ok" && Wanted(replica, entry))
        {
            _captures[(entry.Sequence, replica.Index)] = new Capture(replica.Spec.Id, null, status);
        }

        var pause = Stopwatch.GetElapsedTime(applier.CheckpointWrittenTimestamp);
        _metrics.CheckpointPause(pause);
        _pauses.AddOrUpdate(entry.Sequence, pause, (_, old) => old > pause ? old : pause);
        GroupLog.CheckpointPause(_logger, replica.Spec.Id, entry.Sequence, pause.TotalMilliseconds);
        return [.. normalized, .. Encoding.UTF8.GetBytes($"\n#resh checkpoint {status} {hash}")];
    }

    /// <summary>
    /// A checkpoint voted on files: the flush's reply is voted as it is; a replica whose flush started (background) or
    /// finished (its files captured now) gives its digest later, in the vote on files.
    /// </summary>
    private string FlushForFileVote(Replica replica, LogEntry entry, ReadOnlySpan<byte> reply, CheckpointOptions options)
    {
        if (_protocol.IsErrorReply(reply))
        {
            return "flush failed";
        }

        string? captured = null;
        if (!options.Background)
        {
            try
            {
                captured = CapturePath(entry.Sequence, replica.Spec.Id, replica.Generation);
                CheckpointFiles.Capture(replica.DataDirectory, options.Files, captured);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                GroupLog.CaptureFailed(_logger, replica.Spec.Id, entry.Sequence, e.Message);
                return $"capture failed ({e.GetType().Name})";
            }
        }

        StartFileVote(replica, entry, captured);
        return "ok";
    }

    /// <summary>Whether this replica's capture may become the stored checkpoint: it votes and the vote is open.</summary>
    private bool Wanted(Replica replica, LogEntry entry)
    {
        lock (_lock)
        {
            return _voter.Decisions.KindOf(entry.Sequence) == Decision.Pending && replica.State == ReplicaState.Up;
        }
    }

    /// <summary>The vote on a checkpoint entry settled (outside the lock).</summary>
    private void CheckpointSettled(VoteOutcome outcome)
    {
        var entry = outcome.Entry;
        if (outcome.Kind == VoteOutcomeKind.Disagreed)
        {
            FailCheckpoint(entry, "the replicas disagree on it");
            return;
        }

        if (_options.Checkpoint!.VotesOnFiles)
        {
            // The flush's reply was voted with its status; the files' digests are counted as they come.
            if (!_protocol.IsErrorReply(outcome.Reply.Span))
            {
                TallyFileVote(entry);
            }
            else
            {
                FailCheckpoint(entry, $"f+1 replicas agree that it failed ({Encoding.UTF8.GetString(outcome.Reply.Span).ReplaceLineEndings(" ").Trim()})");
            }

            return;
        }

        var winner = _replicas[outcome.Replica];
        if (!_captures.TryRemove((entry.Sequence, outcome.Replica), out var capture) || capture.Path is null)
        {
            var reply = Encoding.UTF8.GetString(outcome.Reply.Span).ReplaceLineEndings(" ").Trim();
            FailCheckpoint(entry, $"f+1 replicas agree that it failed: {capture?.Status ?? "no capture"} ({winner.Spec.Id} answered: {reply})");
            return;
        }

        var digest = "";
        if (_options.Checkpoint!.Digest is not null)
        {
            digest = Encoding.UTF8.GetString(outcome.Reply.Span).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
        }

        _storeJobs.Writer.TryWrite((entry, capture, digest));
    }

    /// <summary>One replica's capture of a checkpoint: its staging directory, or null with what failed.</summary>
    private sealed record Capture(string Replica, string? Path, string Status);
}
