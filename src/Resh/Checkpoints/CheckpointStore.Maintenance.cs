// Over 400 lines: retention, compaction and repair of one store: each rewrites packs and the index under the same lock and crash rules.
using System.Buffers;
using Resh.Native;

namespace Resh.Checkpoints;

public sealed partial class CheckpointStore
{
    /// <summary>
    /// Applies <paramref name="policy"/> to the committed snapshots and deletes the manifests of those
    /// it does not keep; their chunks become garbage for <see cref="CompactAsync"/>. With
    /// <paramref name="dryRun"/> nothing is deleted (and a read-only store will do).
    /// </summary>
    public async Task<PruneResult> PruneAsync(RetentionPolicy policy, bool dryRun = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var errors = policy.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid retention policy: " + string.Join("; ", errors), nameof(policy));
        }

        if (dryRun)
        {
            ThrowIfDisposed();
            await RefreshIfReaderAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            EnsureWritable();
        }

        await _commitGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            List<SnapshotInfo> snapshots;
            lock (_stateLock)
            {
                snapshots = [.. _manifests.Select(m => m.Value.ToInfo(m.Key)).OrderByDescending(s => s.Time).ThenBy(s => s.Id, StringComparer.Ordinal)];
            }

            var decision = policy.Evaluate(snapshots.Select(s => new SnapshotTime(s.Id, s.Time)), _options.Clock.GetUtcNow());
            var removed = snapshots.Where(s => !decision.IsKept(s.Id)).ToList();
            if (!dryRun && removed.Count > 0)
            {
                foreach (var snapshot in removed)
                {
                    var path = Path.Combine(_snapshotsDir, snapshot.Id + ".json");
                    File.Delete(path);
                    lock (_stateLock)
                    {
                        _manifests.Remove(snapshot.Id);
                    }

                    StoreLog.Pruned(_logger, snapshot.Id, snapshot.Time);
                    Hit(FaultPoint.PruneManifestDeleted, path);
                }

                Libc.FsyncDirectory(_snapshotsDir);
            }

            return new PruneResult
            {
                Kept = [.. snapshots.Where(s => decision.IsKept(s.Id))],
                Removed = removed,
                Reasons = decision.Kept,
                DryRun = dryRun,
            };
        }
        finally
        {
            _commitGate.Release();
        }
    }

    /// <summary>
    /// Garbage collection: live chunks are those of the committed snapshots (and of snapshots now
    /// running). Packs with nothing live are deleted; packs whose dead share reaches the threshold, and
    /// small packs, have their live chunks copied into new packs and are then deleted, emptiest and
    /// oldest first (LFS cost-benefit (1 - u)·age / (1 + u)). Order: new packs durable, then one
    /// consolidated index superseding all index files durable, then old index files and packs deleted.
    /// May run while a snapshot runs (see the class remarks). A dry run changes nothing and works on a read-only store.
    /// </summary>
    public async Task<CompactionResult> CompactAsync(CompactionOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new CompactionOptions();
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid compaction options: " + string.Join("; ", errors), nameof(options));
        }

        if (options.DryRun)
        {
            ThrowIfDisposed();
            await RefreshIfReaderAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            EnsureWritable();
        }

        await _compactGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            List<PackUsage> delete;
            List<PackUsage> rewrite;
            await _commitGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                lock (_stateLock)
                {
                    (delete, rewrite) = PlanCompaction(options, _options.Clock.GetUtcNow());
                    if (!options.DryRun)
                    {
                        // From now on no snapshot can start reusing the dead chunks of these packs.
                        foreach (var usage in delete.Concat(rewrite))
                        {
                            foreach (var entry in usage.Pack.Entries)
                            {
                                if (_index.IsIndexed(usage.Pack, entry) && !usage.Live.Contains(entry.Offset))
                                {
                                    _index.Chunks.Remove(entry.Id);
                                }
                            }
                        }
                    }
                }
            }
            finally
            {
                _commitGate.Release();
            }

            if (options.DryRun || (delete.Count == 0 && rewrite.Count == 0))
            {
                return new CompactionResult
                {
                    PacksDeleted = delete.Count,
                    PacksRewritten = rewrite.Count,
                    ChunksCopied = rewrite.Sum(r => r.Live.Count),
                    BytesCopied = rewrite.Sum(r => r.LiveBytes),
                    BytesFreed = delete.Concat(rewrite).Sum(r => r.Pack.Size - r.LiveBytes),
                    DryRun = options.DryRun,
                };
            }

            var (newPacks, rewritten, skipped, copiedChunks, copiedBytes) = await CopyLiveChunksAsync(rewrite, cancellationToken).ConfigureAwait(false);
            Hit(FaultPoint.CompactionPacksWritten, null);
            var removed = delete.Select(d => d.Pack).Concat(rewritten).ToList();
            await CommitCompactionAsync(removed, newPacks).ConfigureAwait(false);
            var freed = removed.Sum(p => p.Size) - newPacks.Sum(p => p.Size);
            StoreLog.Compacted(_logger, rewritten.Count, delete.Count, copiedBytes, freed);
            return new CompactionResult
            {
                PacksDeleted = delete.Count,
                PacksRewritten = rewritten.Count,
                PacksWritten = newPacks.Count,
                ChunksCopied = copiedChunks,
                BytesCopied = copiedBytes,
                BytesFreed = freed,
                SkippedDamagedPacks = skipped,
            };
        }
        finally
        {
            _compactGate.Release();
        }
    }

    /// <summary>Sizes of the store: see <see cref="StoreStats"/>.</summary>
    public async Task<StoreStats> StatsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        await RefreshIfReaderAsync(cancellationToken).ConfigureAwait(false);
        var details = new List<PackStats>();
        int snapshots, chunks, liveChunks;
        long logical = 0, unique = 0, packBytes = 0, dead = 0;
        lock (_stateLock)
        {
            var live = LiveChunksLocked(includePins: false);
            snapshots = _manifests.Count;
            chunks = _index.Chunks.Count;
            liveChunks = 0;
            foreach (var manifest in _manifests.Values)
            {
                logical += manifest.Summary.LogicalBytes;
            }

            foreach (var pack in _index.Packs.Values.OrderBy(p => p.Created).ThenBy(p => p.Id, StringComparer.Ordinal))
            {
                var usage = Usage(pack, live);
                liveChunks += usage.Live.Count;
                foreach (var entry in pack.Entries)
                {
                    if (usage.Live.Contains(entry.Offset))
                    {
                        unique += entry.RawLength;
                    }
                }

                packBytes += pack.Size;
                dead += usage.DeadBytes;
                details.Add(new PackStats
                {
                    Id = pack.Id,
                    Size = pack.Size,
                    LiveBytes = usage.LiveBytes,
                    DeadBytes = usage.DeadBytes,
                    Records = pack.Entries.Length,
                    LiveRecords = usage.Live.Count,
                    Created = pack.Created,
                });
            }
        }

        long total = 0;
        foreach (var file in Directory.EnumerateFiles(_root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            try
            {
                total += new FileInfo(file).Length;
            }
            catch (FileNotFoundException)
            {
            }
        }

        return new StoreStats
        {
            Snapshots = snapshots,
            Packs = details.Count,
            Chunks = chunks,
            LiveChunks = liveChunks,
            LogicalBytes = logical,
            UniqueBytes = unique,
            PackBytes = packBytes,
            TotalBytes = total,
            DeadBytes = dead,
            PackDetails = details,
        };
    }

    /// <summary>One pack's live records (by offset) and live and dead record bytes.</summary>
    private sealed record PackUsage(PackInfo Pack, HashSet<long> Live, long LiveBytes, long DeadBytes, double Score);

    private HashSet<ChunkId> LiveChunksLocked(bool includePins)
    {
        var live = new HashSet<ChunkId>();
        foreach (var manifest in _manifests.Values)
        {
            live.UnionWith(manifest.ChunkIds());
        }

        if (includePins)
        {
            foreach (var pins in _pins)
            {
                live.UnionWith(pins);
            }
        }

        return live;
    }

    /// <summary>A record is live when a snapshot needs its chunk and the index points at this very record (not a duplicate elsewhere).</summary>
    private PackUsage Usage(PackInfo pack, HashSet<ChunkId> live, DateTimeOffset? now = null)
    {
        var liveOffsets = new HashSet<long>();
        long liveBytes = 0, deadBytes = 0;
        foreach (var entry in pack.Entries)
        {
            if (live.Contains(entry.Id) && _index.IsIndexed(pack, entry))
            {
                liveOffsets.Add(entry.Offset);
                liveBytes += entry.RecordLength;
            }
            else
            {
                deadBytes += entry.RecordLength;
            }
        }

        var total = liveBytes + deadBytes;
        var u = total == 0 ? 0 : (double)liveBytes / total;
        var age = now is { } n ? Math.Max(1, (n - pack.Created).TotalSeconds) : 1;
        return new PackUsage(pack, liveOffsets, liveBytes, deadBytes, (1 - u) * age / (1 + u));
    }

    private (List<PackUsage> Delete, List<PackUsage> Rewrite) PlanCompaction(CompactionOptions options, DateTimeOffset now)
    {
        var live = LiveChunksLocked(includePins: true);
        var delete = new List<PackUsage>();
        var candidates = new List<PackUsage>();
        var small = new List<PackUsage>();
        foreach (var pack in _index.Packs.Values)
        {
            var usage = Usage(pack, live, now);
            if (usage.LiveBytes == 0)
            {
                delete.Add(usage);
            }
            else if (usage.DeadBytes > 0 && (double)usage.DeadBytes / (usage.LiveBytes + usage.DeadBytes) >= options.DeadFractionThreshold)
            {
                candidates.Add(usage);
            }
            else if (pack.Size < options.SmallPackFraction * _options.PackTargetSize)
            {
                small.Add(usage);
            }
        }

        // Merging a few small packs into one more small pack gains little; do it when there are
        // enough of them, or fold them into the packs being written anyway.
        if (small.Count >= options.SmallPacksToMerge || (small.Count > 0 && candidates.Count > 0))
        {
            candidates.AddRange(small);
        }

        var rewrite = new List<PackUsage>();
        long budget = options.MaxCopyBytes ?? long.MaxValue;
        foreach (var usage in candidates.OrderByDescending(c => c.Score).ThenBy(c => c.Pack.Created))
        {
            if (usage.LiveBytes > budget)
            {
                continue;
            }

            budget -= usage.LiveBytes;
            rewrite.Add(usage);
        }

        return (delete, rewrite);
    }

    private async Task<(List<PackInfo> NewPacks, List<PackInfo> Rewritten, List<string> Skipped, int Chunks, long Bytes)> CopyLiveChunksAsync(List<PackUsage> rewrite, CancellationToken cancellationToken)
    {
        var newPacks = new List<PackInfo>();
        var rewritten = new List<PackInfo>();
        var skipped = new List<string>();
        var syncs = new List<Task>();
        var directories = new HashSet<string>(StringComparer.Ordinal);
        PackWriter? writer = null;
        var chunks = 0;
        long bytes = 0;
        try
        {
            foreach (var usage in rewrite)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var pack = usage.Pack;
                var (buffer, length, error) = await ReadWholePackAsync(pack.Id, cancellationToken).ConfigureAwait(false);
                if (buffer is null)
                {
                    skipped.Add(pack.Id);
                    StoreLog.CompactionSkippedPack(_logger, pack.Id, error!);
                    continue;
                }

                try
                {
                    var live = pack.Entries.Where(e => usage.Live.Contains(e.Offset)).ToList();
                    error = CheckLiveRecords(buffer.AsSpan(0, length), live, pack.Id);
                    if (error is not null)
                    {
                        skipped.Add(pack.Id);
                        StoreLog.CompactionSkippedPack(_logger, pack.Id, error);
                        continue;
                    }

                    foreach (var entry in live)
                    {
                        if (writer is null)
                        {
                            writer = await PackWriter.CreateAsync(_packsDir, _faults, _options.Clock.GetUtcNow(), cancellationToken).ConfigureAwait(false);
                            directories.Add(writer.Directory);
                        }

                        var stored = buffer.AsMemory((int)entry.Offset + PackFormat.RecordHeaderSize, entry.StoredLength);
                        await writer.AppendAsync(entry.Id, stored, entry.RawLength, entry.Flags, cancellationToken).ConfigureAwait(false);
                        chunks++;
                        bytes += entry.RecordLength;
                        if (writer.Length >= _options.PackTargetSize)
                        {
                            newPacks.Add(await writer.FinishAsync(cancellationToken).ConfigureAwait(false));
                            var finished = writer;
                            writer = null;
                            syncs.Add(Task.Run(finished.Sync, CancellationToken.None));
                            if (syncs.Count(t => !t.IsCompleted) > _options.MaxPendingPackSyncs)
                            {
                                await syncs.First(t => !t.IsCompleted).ConfigureAwait(false);
                            }
                        }
                    }

                    rewritten.Add(pack);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }

            if (writer is not null)
            {
                newPacks.Add(await writer.FinishAsync(cancellationToken).ConfigureAwait(false));
                var finished = writer;
                writer = null;
                syncs.Add(Task.Run(finished.Sync, CancellationToken.None));
            }

            await Task.WhenAll(syncs).ConfigureAwait(false);
            foreach (var dir in directories)
            {
                Libc.FsyncDirectory(dir);
            }

            Libc.FsyncDirectory(_packsDir);
            return (newPacks, rewritten, skipped, chunks, bytes);
        }
        catch (Exception e) when (e is not InjectedFaultException)
        {
            // Nothing references the new packs yet: remove them (a crash leaves them to the next open).
            if (writer is not null)
            {
                await writer.DisposeAsync().ConfigureAwait(false);
                writer = null;
            }

            try
            {
                await Task.WhenAll(syncs).ConfigureAwait(false);
            }
            catch (Exception inner) when (inner is IOException or ObjectDisposedException)
            {
            }

            foreach (var pack in newPacks)
            {
                File.Delete(PackWriter.PathOf(_packsDir, pack.Id));
            }

            throw;
        }
        finally
        {
            if (writer is not null)
            {
                await writer.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static string? CheckLiveRecords(ReadOnlySpan<byte> data, List<PackEntry> live, string packId)
    {
        foreach (var entry in live)
        {
            if (entry.Offset + entry.RecordLength > data.Length)
            {
                return $"record of chunk {entry.Id.ToShortString()} lies outside the pack";
            }

            try
            {
                var (content, _) = CheckRecord(data.Slice((int)entry.Offset, (int)entry.RecordLength), entry, packId);
                ArrayPool<byte>.Shared.Return(content);
            }
            catch (ChunkCorruptedException e)
            {
                return $"live chunk {entry.Id.ToShortString()} is damaged ({e.Reason}); run verify";
            }
        }

        return null;
    }

    private async Task<(byte[]? Buffer, int Length, string? Error)> ReadWholePackAsync(string packId, CancellationToken cancellationToken)
    {
        try
        {
            using var handle = File.OpenHandle(PackWriter.PathOf(_packsDir, packId), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var length = RandomAccess.GetLength(handle);
            if (length > int.MaxValue - 1024)
            {
                return (null, 0, "pack too large");
            }

            var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(1, length));
            var read = 0;
            while (read < length)
            {
                var n = await RandomAccess.ReadAsync(handle, buffer.AsMemory(read, (int)length - read), read, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            return (buffer, read, null);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return (null, 0, "the pack file is missing");
        }
    }

    /// <summary>Consolidated index (durable) first; then the old index files; then the old packs.</summary>
    private async Task CommitCompactionAsync(List<PackInfo> removed, List<PackInfo> newPacks)
    {
        var removedIds = removed.Select(p => p.Id).ToHashSet(StringComparer.Ordinal);
        await _commitGate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            var indexId = IndexFile.NewId();
            byte[] bytes;
            List<string> superseded;
            lock (_stateLock)
            {
                var kept = _index.Packs.Values.Where(p => !removedIds.Contains(p.Id)).Concat(newPacks).ToList();
                // A damaged index file is never superseded: its packs are unknown here, and keeping
                // it keeps them (a writer collects no unindexed packs while one is damaged).
                var damaged = _index.Damaged.Select(d => d.Id).ToHashSet(StringComparer.Ordinal);
                superseded = [.. _index.Files.Where(f => !damaged.Contains(f))];
                bytes = IndexFile.Encode(kept, superseded);
            }

            await WriteAtomicAsync(_indexDir, indexId + ".idx", bytes, FaultPoint.IndexTempWritten, FaultPoint.IndexRenamed, CancellationToken.None).ConfigureAwait(false);
            Hit(FaultPoint.CompactionIndexCommitted, Path.Combine(_indexDir, indexId + ".idx"));

            lock (_stateLock)
            {
                foreach (var pack in newPacks)
                {
                    _index.Packs[pack.Id] = pack;
                    foreach (var entry in pack.Entries)
                    {
                        // The copy replaces the old record, which is about to go.
                        if (!_index.Chunks.TryGetValue(entry.Id, out var current) || removedIds.Contains(current.Pack.Id))
                        {
                            _index.Chunks[entry.Id] = new ChunkLocation(pack, entry);
                        }
                    }
                }

                foreach (var pack in removed)
                {
                    _index.Packs.Remove(pack.Id);
                    foreach (var entry in pack.Entries)
                    {
                        if (_index.Chunks.TryGetValue(entry.Id, out var current) && ReferenceEquals(current.Pack, pack))
                        {
                            _index.Chunks.Remove(entry.Id);
                        }
                    }
                }

                _index.Files.ExceptWith(superseded);
                _index.Files.Add(indexId);
            }

            foreach (var id in superseded)
            {
                var path = Path.Combine(_indexDir, id + ".idx");
                File.Delete(path);
                Hit(FaultPoint.CompactionIndexDeleted, path);
            }

            Libc.FsyncDirectory(_indexDir);
            var directories = new HashSet<string>(StringComparer.Ordinal);
            foreach (var pack in removed)
            {
                var path = PackWriter.PathOf(_packsDir, pack.Id);
                File.Delete(path);
                directories.Add(Path.GetDirectoryName(path)!);
                Hit(FaultPoint.CompactionPackDeleted, path);
            }

            foreach (var dir in directories)
            {
                Libc.FsyncDirectory(dir);
            }
        }
        finally
        {
            _commitGate.Release();
        }
    }
}
