using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Resh.Ordering;
using Resh.Protocols;
using Resh.Replicas;
using Resh.Voting;

namespace Resh.Group;

/// <summary>
/// The vote on checkpoint files. With a background flush (Redis: BGSAVE) a replica answers as soon as the flush has
/// started (a fork), and goes on serving; the group polls the flush's completion on a side connection, captures the
/// files by hard link, digests them off the replica's reader loop (the RDB digest, or the files' SHA-256) and counts the
/// digest. f+1 equal digests verify the checkpoint, and the stored files are those of a replica whose digest won, so
/// what is stored is what was voted. A replica whose files digest differently, or are damaged, is suspected.
/// </summary>
public sealed partial class ReplicaGroup
{
    private readonly ConcurrentDictionary<long, FileVote> _fileVotes = new();

    /// <summary>One digest at a time, each on a thread of its own: a digest reads a whole data set.</summary>
    private readonly SemaphoreSlim _digestSlot = new(1, 1);
    private int _flushesRunning;
    private long _startHead = -1;

    /// <summary>Background flushes still running on some replica (the next checkpoint waits: one save at a time).</summary>
    private int FlushesRunning => Volatile.Read(ref _flushesRunning);

    /// <summary>The replicas that flush each open checkpoint voted on files (a bit per replica); the other voters rest.</summary>
    private readonly ConcurrentDictionary<long, ulong> _flushers = new();
    private int _flushRotation;
    private bool _allFlushNext;

    bool IApplierCallbacks.SkipsCheckpoint(ReplicaApplier applier, LogEntry entry) =>
        entry.Sequence <= Volatile.Read(ref _startHead) || _voter.Decisions.KindOf(entry.Sequence) != Decision.Pending
        || (FlushersOf(entry) & (1UL << applier.ReplicaIndex)) == 0;

    /// <summary>
    /// The replicas that flush a checkpoint, chosen when the first replica reaches it: with <c>flush-by: quorum</c> f+1
    /// of the voting replicas, starting f+1 further on each time (so no replica rests twice in a row); the others
    /// abstain from its vote and go on serving, and their forks, saves and digests are saved. Everyone else, all.
    /// </summary>
    private ulong FlushersOf(LogEntry entry)
    {
        if (_options.Checkpoint is not { VotesOnFiles: true, Flushers: CheckpointFlushers.Quorum })
        {
            return ulong.MaxValue;
        }

        if (_flushers.TryGetValue(entry.Sequence, out var chosen))
        {
            return chosen;
        }

        var outcomes = new List<VoteOutcome>();
        var resting = new List<string>();
        lock (_lock)
        {
            if (_flushers.TryGetValue(entry.Sequence, out chosen))
            {
                return chosen;
            }

            var voters = _replicas.Where(r => _voter.IsVoter(r.Index)).Select(r => r.Index).ToList();
            chosen = ulong.MaxValue;
            if (_allFlushNext || voters.Count <= _voter.Quorum || _voter.Decisions.KindOf(entry.Sequence) != Decision.Pending)
            {
                _allFlushNext = false;
            }
            else
            {
                chosen = 0;
                var start = _flushRotation % voters.Count;
                _flushRotation = (start + _voter.Quorum) % voters.Count;
                for (var k = 0; k < _voter.Quorum; k++)
                {
                    chosen |= 1UL << voters[(start + k) % voters.Count];
                }

                foreach (var index in voters.Where(i => (chosen & (1UL << i)) == 0))
                {
                    _voter.Abstain(index, entry, outcomes);
                    resting.Add(_replicas[index].Spec.Id);
                }
            }

            _flushers[entry.Sequence] = chosen;
        }

        if (resting.Count > 0)
        {
            GroupLog.CheckpointRests(_logger, entry.Sequence, string.Join(", ", resting));
        }

        Release(outcomes);
        return chosen;
    }

    /// <summary>Whether only f+1 replicas flush the checkpoint at <paramref name="sequence"/> (the others rest).</summary>
    private bool FlushedByQuorum(long sequence) => _flushers.TryGetValue(sequence, out var chosen) && chosen != ulong.MaxValue;

    /// <summary>How many voting replicas flush the checkpoint at <paramref name="sequence"/> (call under the lock).</summary>
    private int FlushingVoters(long sequence)
    {
        var mask = _flushers.TryGetValue(sequence, out var chosen) ? chosen : ulong.MaxValue;
        return _replicas.Count(r => _voter.IsVoter(r.Index) && (mask & (1UL << r.Index)) != 0);
    }

    /// <summary>A voting replica answered the flush: finish its part of the vote on files in the background.</summary>
    private void StartFileVote(Replica replica, LogEntry entry, string? captured)
    {
        var options = _options.Checkpoint!;
        var (index, generation, id, port, data) = (replica.Index, replica.Generation, replica.Spec.Id, replica.Port, replica.DataDirectory);
        _fileVotes.GetOrAdd(entry.Sequence, _ => new FileVote(_clock.GetTimestamp())).Started();
        Interlocked.Increment(ref _flushesRunning);
        _ = Task.Run(
            async () =>
            {
                string? digest = null;
                string? problem = null;
                var path = captured;
                var damaged = false;
                try
                {
                    if (options.Background)
                    {
                        Interlocked.Increment(ref replica.Flushing);
                        try
                        {
                            problem = await WaitForFlushAsync(port, options, _stopping.Token);
                        }
                        finally
                        {
                            Volatile.Write(ref replica.FlushEnded, _clock.GetTimestamp());
                            Interlocked.Decrement(ref replica.Flushing);
                        }
                    }

                    if (problem is null)
                    {
                        if (path is null)
                        {
                            path = CapturePath(entry.Sequence, id, generation);
                            CheckpointFiles.Capture(data, options.Files, path);
                        }

                        digest = await DigestAsync(options, path, _stopping.Token);
                    }
                }
                catch (InvalidDataException e)
                {
                    (problem, damaged) = ($"its checkpoint files are damaged: {e.Message}", true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    problem = $"capturing its files failed: {e.Message}";
                }
                catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
                {
                    return;
                }
                finally
                {
                    Interlocked.Decrement(ref _flushesRunning);
                }

                CountFileDigest(entry, new FileDigest(index, generation, id, digest, path, problem, damaged));
            },
            CancellationToken.None);
    }

    /// <summary>
    /// Digests captured files on a thread of its own, one replica's at a time: the thread pool stays free for the
    /// request path (a digest of 1 GiB takes seconds; three on pool threads starved the gateway's continuations), and
    /// on a small machine one core is left to the service.
    /// </summary>
    private async Task<string> DigestAsync(CheckpointOptions options, string path, CancellationToken ct)
    {
        await _digestSlot.WaitAsync(ct);
        try
        {
            return await Task.Factory.StartNew(() => CheckpointFiles.Digest(options.Digest, path, options.Files), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        finally
        {
            _digestSlot.Release();
        }
    }

    private string CapturePath(long sequence, string replica, long generation) =>
        Path.Combine(StagingDirectory, sequence.ToString(CultureInfo.InvariantCulture), $"{replica}.g{generation}");

    /// <summary>Polls the flush-done command until its reply says the flush finished; null, or what went wrong.</summary>
    private async Task<string?> WaitForFlushAsync(int port, CheckpointOptions options, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.FlushTimeout);
        var request = _protocol.EncodeCommand(options.FlushDone!);
        var delay = TimeSpan.FromMilliseconds(5);
        try
        {
            using var client = await WireClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), _protocol.CreateReplyFramer(), timeout.Token);
            while (true)
            {
                var bytes = await client.RequestAsync(request, timeout.Token);
                var reply = Encoding.UTF8.GetString(bytes);
                if (_protocol.IsErrorReply(bytes))
                {
                    return $"'{options.FlushDone}' failed: {reply.Trim()}";
                }

                if (reply.Contains(options.FlushDoneWhen!, StringComparison.Ordinal))
                {
                    return options.FlushFailedWhen is { } failed && reply.Contains(failed, StringComparison.Ordinal) ? $"the background flush failed ({failed})" : null;
                }

                // Real time: this waits for the service's own work (Redis notices its saving child in its cron).
                await Task.Delay(delay, timeout.Token);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 100));
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return $"the background flush did not finish within {options.FlushTimeout.TotalSeconds:0} s";
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidDataException)
        {
            return $"'{options.FlushDone}' could not reach it: {e.Message}";
        }
    }

    /// <summary>Counts one replica's digest: the first f+1 equal ones verify the checkpoint; every other one is checked against them.</summary>
    private void CountFileDigest(LogEntry entry, FileDigest part)
    {
        if (part.Problem is not null && !part.Damaged)
        {
            GroupLog.CaptureFailed(_logger, part.Replica, entry.Sequence, part.Problem);
        }

        bool late;
        string? winner = null;
        lock (_lock)
        {
            late = !_fileVotes.TryGetValue(entry.Sequence, out var vote) || vote.Closed;
            if (late)
            {
                winner = vote?.Winner;
            }
            else
            {
                vote!.Parts.Add(part);
            }
        }

        if (!late)
        {
            TallyFileVote(entry);
            return;
        }

        DeleteCapture(part.Path);
        if (part.Damaged || (winner is not null && part.Digest is not null && part.Digest != winner))
        {
            // Decided (or given up) without this replica: it is still checked against the winner.
            SuspectFiles(entry, [part], winner);
        }
    }

    /// <summary>
    /// Decides the vote on files once the flush's own vote agreed and f+1 digests are equal (the winner's files are
    /// stored, the others' checked), or fails it once no digest can reach f+1 any more.
    /// </summary>
    private void TallyFileVote(LogEntry entry)
    {
        (LogEntry, Capture, string)? store = null;
        string? fail = null;
        var suspects = new List<FileDigest>();
        string? winner;
        lock (_lock)
        {
            if (!_fileVotes.TryGetValue(entry.Sequence, out var vote) || vote.Closed)
            {
                return;
            }

            if (vote.Winner is null)
            {
                var best = vote.Parts.Where(p => p.Digest is not null).GroupBy(p => p.Digest!, StringComparer.Ordinal).MaxBy(g => g.Count());
                if (best is not null && best.Count() >= _voter.Quorum && _voter.Decisions.KindOf(entry.Sequence) == Decision.Decided)
                {
                    vote.Winner = best.Key;
                    var chosen = best.First();
                    store = (entry, new Capture(chosen.Replica, chosen.Path, "ok"), best.Key);
                }
                else if (vote.Parts.Count >= vote.Count && (best?.Count() ?? 0) + (FlushingVoters(entry.Sequence) - vote.Parts.Count) < _voter.Quorum)
                {
                    fail = "no f+1 replicas' files digest alike: " + string.Join("; ", vote.Parts.Select(p => $"{p.Replica} {p.Digest ?? p.Problem}"));
                    if (FlushedByQuorum(entry.Sequence))
                    {
                        // Only f+1 flushed and they differ: which one is wrong is not known, so every replica flushes the next.
                        _allFlushNext = true;
                        fail += "; every replica flushes the next checkpoint";
                    }
                }
            }

            winner = vote.Winner;
            suspects.AddRange(vote.Parts.Where(p => !p.Checked && (p.Damaged || (winner is not null && p.Digest is not null && p.Digest != winner))));
            foreach (var p in vote.Parts)
            {
                p.Checked = winner is not null || fail is not null;
            }
        }

        SuspectFiles(entry, suspects, winner);
        if (store is { } job)
        {
            _storeJobs.Writer.TryWrite(job);
        }
        else if (fail is not null)
        {
            FailCheckpoint(entry, fail);
        }
    }

    private void SuspectFiles(LogEntry entry, List<FileDigest> parts, string? winner)
    {
        foreach (var part in parts)
        {
            var reason = part.Problem ?? $"its checkpoint files digest as {part.Digest}, f+1 replicas' as {winner}";
            _events.Record("+checkpoint-mismatch", part.Replica, $"#{entry.Sequence}: {reason}");
            ((IGroupControl)this).Suspect(part.Index, part.Generation, "checkpoint", reason);
        }
    }

    /// <summary>A checkpoint that is voted on files was decided or failed: later digests are only checked, and captures removed.</summary>
    private void CloseFileVote(long sequence)
    {
        if (_fileVotes.TryGetValue(sequence, out var vote))
        {
            List<string?> paths;
            lock (_lock)
            {
                vote.Closed = true;
                paths = [.. vote.Parts.Select(p => p.Path)];
            }

            // Unlinking stays out of the group's lock.
            paths.ForEach(DeleteCapture);
        }

        foreach (var old in _fileVotes.Keys.Where(s => s < sequence))
        {
            _fileVotes.TryRemove(old, out _);
        }

        foreach (var old in _flushers.Keys.Where(s => s < sequence))
        {
            _flushers.TryRemove(old, out _);
        }
    }

    /// <summary>Called on monitor ticks: a vote on files open longer than the flush timeout (and a margin) is given up.</summary>
    private void ExpireFileVotes()
    {
        var limit = _options.Checkpoint!.FlushTimeout + TimeSpan.FromSeconds(30);
        LogEntry? entry;
        lock (_lock)
        {
            entry = _checkpointInProgress;
        }

        if (entry is not null && _fileVotes.TryGetValue(entry.Sequence, out var vote) && !vote.Closed && vote.Winner is null && _clock.GetElapsedTime(vote.Opened) > limit)
        {
            FailCheckpoint(entry, $"no f+1 replicas' files were digested alike within {limit.TotalSeconds:0} s");
        }
    }

    private void DeleteCapture(string? path)
    {
        if (path is null || !Directory.Exists(path))
        {
            return;
        }

        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            GroupLog.CaptureFailed(_logger, "-", -1, $"cannot remove {path}: {e.Message}");
        }
    }

    /// <summary>One replica's part of a vote on files: its digest, or what went wrong (damaged: its files could not be read as what they should be).</summary>
    private sealed record FileDigest(int Index, int Generation, string Replica, string? Digest, string? Path, string? Problem, bool Damaged)
    {
        /// <summary>Compared with a winner (or the vote failed): not suspected twice.</summary>
        public bool Checked { get; set; }
    }

    /// <summary>The digests counted so far for one checkpoint.</summary>
    private sealed class FileVote(long opened)
    {
        private int _started;

        public long Opened { get; } = opened;

        /// <summary>Replicas that answered the flush and will report a digest.</summary>
        public int Count => Volatile.Read(ref _started);

        public List<FileDigest> Parts { get; } = [];

        public string? Winner { get; set; }

        public bool Closed { get; set; }

        public void Started() => Interlocked.Increment(ref _started);
    }
}
