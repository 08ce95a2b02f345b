using System.Diagnostics;
using System.Globalization;
using Resh.Checkpoints;
using Resh.Ordering;

namespace Resh.Group;

/// <summary>Storing verified checkpoints in the background, pruning old ones, and truncating the log behind them.</summary>
public sealed partial class ReplicaGroup
{
    private async Task StoreLoopAsync(CancellationToken ct)
    {
        var options = _options.Checkpoint!;
        try
        {
            await foreach (var (entry, capture, digest) in _storeJobs.Reader.ReadAllAsync(ct))
            {
                VerifiedCheckpoint verified;
                Dictionary<string, string> labels;
                var started = Stopwatch.GetTimestamp();
                try
                {
                    labels = new Dictionary<string, string>(StringComparer.Ordinal)
                    {
                        [SequenceLabel] = entry.Sequence.ToString(CultureInfo.InvariantCulture),
                        ["resh.replica"] = capture.Replica,
                    };
                    if (digest.Length > 0)
                    {
                        labels[DigestLabel] = digest.TrimStart('+', '$');
                    }

                    foreach (var more in _hooks.Select(h => h.Labels(entry.Sequence)).Append(_protocol.CheckpointLabels(entry.Sequence)))
                    {
                        foreach (var (key, value) in more ?? new Dictionary<string, string>())
                        {
                            labels[key] = value;
                        }
                    }

                    var info = await _store!.SnapshotAsync(capture.Path!, labels, ct);
                    verified = new VerifiedCheckpoint(entry.Sequence, info.Id, info.Time) { Labels = labels };
                    lock (_lock)
                    {
                        _newest = verified;

                        // The schedule counts from the newest checkpoint, whoever submitted it (D-RESH: another host).
                        _lastCheckpointAt = Math.Max(_lastCheckpointAt, entry.Sequence);
                        _lastCheckpointTimestamp = _clock.GetTimestamp();
                        _lastCheckpointBytes = Math.Max(_lastCheckpointBytes, _log.AppendedBytes);
                    }

                    _log.Durable?.TruncateThrough(entry.Sequence);
                    _metrics.Checkpoint("stored");
                    var elapsed = Stopwatch.GetElapsedTime(started);
                    GroupLog.CheckpointStored(_logger, entry.Sequence, info.Id, info.LogicalBytes, info.AddedBytes, elapsed.TotalMilliseconds);
                    var pause = _pauses.TryGetValue(entry.Sequence, out var p) ? p.TotalMilliseconds : 0;
                    _events.Record("+checkpoint", capture.Replica, string.Create(CultureInfo.InvariantCulture, $"#{entry.Sequence} verified by f+1 replicas, longest replica pause {pause:0.#} ms; stored as {info.Id} ({info.LogicalBytes} bytes, {info.AddedBytes} new, {elapsed.TotalMilliseconds:0} ms)"));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or CheckpointStoreException)
                {
                    FailCheckpoint(entry, $"storing it failed: {e.Message}");
                    continue;
                }
                finally
                {
                    DeleteStaging(entry.Sequence);
                }

                CompleteCheckpoint(entry, verified);
                foreach (var hooks in _hooks)
                {
                    hooks.Stored(verified, labels);
                }

                await PruneAsync(options.Retention, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private async Task PruneAsync(RetentionPolicy retention, CancellationToken ct)
    {
        try
        {
            var pruned = await _store!.PruneAsync(retention, cancellationToken: ct);
            if (pruned.Removed.Count > 0)
            {
                await _store.CompactAsync(cancellationToken: ct);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CheckpointStoreException)
        {
            GroupLog.PruneFailed(_logger, e.Message);
        }
    }

    /// <summary>Removes the staging directories of this checkpoint and every older one.</summary>
    private void DeleteStaging(long through)
    {
        foreach (var key in _captures.Keys.Where(k => k.Sequence <= through))
        {
            _captures.TryRemove(key, out _);
        }

        foreach (var seq in _pauses.Keys.Where(s => s <= through))
        {
            _pauses.TryRemove(seq, out _);
        }

        if (!Directory.Exists(StagingDirectory))
        {
            return;
        }

        foreach (var dir in Directory.EnumerateDirectories(StagingDirectory))
        {
            if (long.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var seq) && seq <= through)
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    GroupLog.CaptureFailed(_logger, "-", seq, $"cannot remove {dir}: {e.Message}");
                }
            }
        }
    }

    private void FailCheckpoint(LogEntry entry, string reason)
    {
        _metrics.Checkpoint("failed");
        GroupLog.CheckpointFailed(_logger, entry.Sequence, reason);
        _events.Record("+checkpoint-failed", null, $"#{entry.Sequence}: {reason}");
        if (entry.Sequence >= 0)
        {
            DeleteStaging(entry.Sequence);
        }

        CompleteCheckpoint(entry, null);
    }

    private void CompleteCheckpoint(LogEntry entry, VerifiedCheckpoint? verified)
    {
        if (entry.Sequence >= 0)
        {
            CloseFileVote(entry.Sequence);
        }

        TaskCompletionSource<VerifiedCheckpoint?>? done = null;
        lock (_lock)
        {
            if (ReferenceEquals(_checkpointInProgress, entry))
            {
                _checkpointInProgress = null;
                done = _checkpointDone;
                _checkpointDone = null;
            }
        }

        done?.TrySetResult(verified);
    }

    /// <summary>
    /// Forgets the log entries that the newest verified checkpoint covers and that no live replica still
    /// needs: below the checkpoint and below every running applier's position and every rebuild's start.
    /// </summary>
    private void TruncateLog()
    {
        long freed;
        lock (_lock)
        {
            if (_newest is not { } newest)
            {
                return;
            }

            var held = _log.RetainedBytes;

            var floor = newest.Sequence + 1;
            foreach (var r in _replicas)
            {
                if (r.StartsAt is { } start)
                {
                    floor = Math.Min(floor, start);
                }
                else if (r.Applier is { } applier && r.State is ReplicaState.Up or ReplicaState.Recovering or ReplicaState.Passive or ReplicaState.Updating)
                {
                    floor = Math.Min(floor, applier.Applied + 1);
                }
            }

            foreach (var hooks in _hooks)
            {
                floor = Math.Min(floor, hooks.RetainFrom);
            }

            if (floor > _log.First)
            {
                _log.TruncateBefore(floor);
                _voter.Decisions.TruncateBefore(floor);
            }

            freed = held - _log.RetainedBytes;
        }

        if (freed >= CollectAfterFreeing)
        {
            // The log's chunks (large object heap) and payload blocks (pinned object heap) are reclaimed only by a
            // collection of generation 2, which the runtime starts by its own budgets, long after a checkpoint freed them:
            // the process kept that memory and grew with the request rate (docs/benchmarks.md, "The gateway's memory").
            // A truncation frees them in bulk, so one background collection then gives them back; it runs beside the
            // request path, which it pauses only briefly.
            GC.Collect(2, GCCollectionMode.Forced, blocking: false);
        }
    }

    /// <summary>A truncation that frees this many bytes of log is followed by a background collection (see <see cref="TruncateLog"/>).</summary>
    private const long CollectAfterFreeing = 32L << 20;
}
