using System.Buffers;
using System.Buffers.Binary;

namespace Resh.Checkpoints;

public sealed partial class CheckpointStore
{
    /// <summary>
    /// Reads and checks everything: every manifest against its id, every index file against its
    /// checksum, every pack's header, record framing, payload hashes and footer, and that every chunk
    /// of every snapshot is in the index and intact. The report names each damaged chunk (with its
    /// pack), pack, index file and snapshot (with the files that cannot be restored). <paramref name="progress"/> hears
    /// the pack bytes read so far out of all packs' (the pass over the packs is nearly all of the work).
    /// </summary>
    public async Task<VerifyReport> VerifyAsync(CancellationToken cancellationToken = default, IProgress<StoreProgress>? progress = null)
    {
        ThrowIfDisposed();
        await RefreshIfReaderAsync(cancellationToken).ConfigureAwait(false);
        List<KeyValuePair<string, SnapshotManifest>> manifests;
        List<DamagedItem> damagedManifests;
        List<PackInfo> packs;
        List<DamagedItem> damagedIndexFiles;
        lock (_stateLock)
        {
            manifests = [.. _manifests.OrderBy(m => m.Key, StringComparer.Ordinal)];
            damagedManifests = [.. _damagedManifests];
            packs = [.. _index.Packs.Values.OrderBy(p => p.Id, StringComparer.Ordinal)];
            damagedIndexFiles = [.. _index.Damaged];
        }

        var damagedChunks = new List<DamagedChunk>();
        var damagedRecords = new Dictionary<(string Pack, long Offset), string>();
        var damagedPacks = new List<DamagedItem>();
        var verifiedPacks = new HashSet<string>(StringComparer.Ordinal);
        long bytesRead = 0;
        var chunksChecked = 0;
        var packBytes = packs.Sum(p => p.Size);
        var packsDone = 0L;
        progress?.Report(new StoreProgress(0, packBytes));
        foreach (var pack in packs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var result = await VerifyPackAsync(pack, cancellationToken).ConfigureAwait(false);
            packsDone += pack.Size;
            progress?.Report(new StoreProgress(packsDone, packBytes));
            if (result.Missing)
            {
                if (await IsStillIndexedAsync(pack.Id, cancellationToken).ConfigureAwait(false))
                {
                    damagedPacks.Add(new DamagedItem(pack.Id, "the pack file is missing"));
                    foreach (var e in pack.Entries)
                    {
                        damagedRecords[(pack.Id, e.Offset)] = "its pack file is missing";
                        damagedChunks.Add(new DamagedChunk(e.Id, pack.Id, "its pack file is missing"));
                    }

                    verifiedPacks.Add(pack.Id);
                }

                // Otherwise a compaction removed it after moving its live chunks: they are checked below where they are now.
                continue;
            }

            verifiedPacks.Add(pack.Id);
            bytesRead += result.BytesRead;
            chunksChecked += result.RecordsChecked;
            damagedPacks.AddRange(result.PackErrors.Select(error => new DamagedItem(pack.Id, error)));
            foreach (var (entry, reason) in result.BadEntries)
            {
                damagedRecords[(pack.Id, entry.Offset)] = reason;
                damagedChunks.Add(new DamagedChunk(entry.Id, pack.Id, reason));
            }
        }

        // Every chunk of every snapshot: in the index, and intact where the index says it is.
        var status = new Dictionary<ChunkId, string?>();
        using var readers = new PackReaderCache(_packsDir);
        var reloaded = false;
        var damagedSnapshots = new List<DamagedSnapshot>();
        foreach (var (snapshotId, manifest) in manifests)
        {
            var damagedFiles = new List<string>();
            var badChunks = 0;
            foreach (var entry in manifest.Tree)
            {
                var fileDamaged = false;
                foreach (var chunk in entry.Chunks ?? [])
                {
                    if (!status.TryGetValue(chunk, out var problem))
                    {
                        ChunkLocation location;
                        bool found;
                        lock (_stateLock)
                        {
                            found = _index.Chunks.TryGetValue(chunk, out location);
                        }

                        if (!found && _options.ReadOnly && !reloaded)
                        {
                            reloaded = true;
                            await ReloadAsync(cancellationToken).ConfigureAwait(false);
                            lock (_stateLock)
                            {
                                found = _index.Chunks.TryGetValue(chunk, out location);
                            }
                        }

                        if (!found)
                        {
                            problem = "it is missing from the index";
                            damagedChunks.Add(new DamagedChunk(chunk, "", problem));
                        }
                        else if (damagedRecords.TryGetValue((location.Pack.Id, location.Entry.Offset), out var reason))
                        {
                            problem = reason;
                        }
                        else if (!verifiedPacks.Contains(location.Pack.Id))
                        {
                            // Written or moved by a concurrent operation after the pack pass: check it on its own.
                            problem = await CheckChunkAsync(chunk, readers, cancellationToken).ConfigureAwait(false);
                            chunksChecked++;
                            if (problem is not null)
                            {
                                damagedChunks.Add(new DamagedChunk(chunk, location.Pack.Id, problem));
                            }
                        }

                        status[chunk] = problem;
                    }

                    if (problem is not null)
                    {
                        badChunks++;
                        fileDamaged = true;
                    }
                }

                if (fileDamaged)
                {
                    damagedFiles.Add(entry.Path);
                }
            }

            if (damagedFiles.Count > 0)
            {
                damagedSnapshots.Add(new DamagedSnapshot(snapshotId, $"{badChunks} damaged or missing chunk references in {damagedFiles.Count} files", damagedFiles));
            }
        }

        damagedSnapshots.AddRange(damagedManifests.Select(d => new DamagedSnapshot(d.Id, d.Reason, [])));
        var unreferenced = Directory.Exists(_packsDir)
            ? Directory.EnumerateFiles(_packsDir, "*.pack", SearchOption.AllDirectories)
                .Select(Path.GetFileNameWithoutExtension)
                .Where(id => !IsIndexedPack(id!))
                .Select(id => id!)
                .Order(StringComparer.Ordinal)
                .ToList()
            : [];
        var report = new VerifyReport
        {
            SnapshotsChecked = manifests.Count + damagedManifests.Count,
            PacksChecked = verifiedPacks.Count,
            ChunksChecked = chunksChecked,
            BytesRead = bytesRead,
            DamagedChunks = damagedChunks,
            DamagedPacks = damagedPacks,
            DamagedSnapshots = damagedSnapshots,
            DamagedIndexFiles = damagedIndexFiles,
            UnreferencedPacks = unreferenced,
        };
        if (!report.IsHealthy)
        {
            StoreLog.Damage(_logger, $"{damagedChunks.Count} chunks, {damagedPacks.Count} packs, {damagedSnapshots.Count} snapshots, {damagedIndexFiles.Count} index files");
        }

        return report;
    }

    private bool IsIndexedPack(string id)
    {
        lock (_stateLock)
        {
            return _index.Packs.ContainsKey(id);
        }
    }

    private async Task<bool> IsStillIndexedAsync(string packId, CancellationToken cancellationToken)
    {
        if (_options.ReadOnly)
        {
            await ReloadAsync(cancellationToken).ConfigureAwait(false);
        }

        return IsIndexedPack(packId);
    }

    private async Task<string?> CheckChunkAsync(ChunkId chunk, PackReaderCache readers, CancellationToken cancellationToken)
    {
        try
        {
            var (buffer, _) = await ReadChunkAsync(chunk, readers, cancellationToken).ConfigureAwait(false);
            ArrayPool<byte>.Shared.Return(buffer);
            return null;
        }
        catch (ChunkCorruptedException e)
        {
            return e.Reason;
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }

    private sealed record PackCheck(bool Missing, long BytesRead, int RecordsChecked, List<string> PackErrors, List<(PackEntry Entry, string Reason)> BadEntries);

    /// <summary>Reads one pack whole and checks its header, every record (indexed or not), and its footer against the index.</summary>
    private async Task<PackCheck> VerifyPackAsync(PackInfo pack, CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        var bad = new List<(PackEntry, string)>();
        byte[] buffer;
        int length;
        try
        {
            using var handle = File.OpenHandle(PackWriter.PathOf(_packsDir, pack.Id), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var fileLength = RandomAccess.GetLength(handle);
            if (fileLength > int.MaxValue - 1024)
            {
                return new PackCheck(false, 0, 0, [$"pack file is too large to check ({fileLength} bytes)"], bad);
            }

            length = (int)fileLength;
            buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, length));
            var read = 0;
            while (read < length)
            {
                var n = await RandomAccess.ReadAsync(handle, buffer.AsMemory(read, length - read), read, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            length = read;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return new PackCheck(true, 0, 0, errors, bad);
        }

        var records = 0;
        try
        {
            var data = buffer.AsSpan(0, length);
            if (length != pack.Size)
            {
                errors.Add($"pack is {length} bytes, the index says {pack.Size}");
            }

            if (PackFormat.CheckHeader(data) is { } headerError)
            {
                errors.Add(headerError);
            }
            else if (BinaryPrimitives.ReadUInt32LittleEndian(data[12..]) != 0)
            {
                errors.Add("pack header reserved bytes are not zero");
            }

            // The records the index knows.
            var indexed = new HashSet<long>();
            foreach (var entry in pack.Entries)
            {
                indexed.Add(entry.Offset);
                records++;
                if (entry.Offset < PackFormat.HeaderSize || entry.Offset + entry.RecordLength > length)
                {
                    bad.Add((entry, "the record lies outside the pack (truncated)"));
                    continue;
                }

                try
                {
                    var (content, _) = CheckRecord(data.Slice((int)entry.Offset, (int)entry.RecordLength), entry, pack.Id);
                    ArrayPool<byte>.Shared.Return(content);
                }
                catch (ChunkCorruptedException e)
                {
                    bad.Add((entry, e.Reason));
                }
            }

            // The footer, and every byte between the header and it, including records no index lists.
            var footerError = PackFormat.ReadFooter(data, out var footer, out var recordsEnd);
            if (footerError is not null)
            {
                errors.Add(footerError);
            }
            else
            {
                if (footer.Count != pack.Entries.Length || !footer.SequenceEqual(pack.Entries))
                {
                    errors.Add("pack footer does not match the index");
                }

                long pos = PackFormat.HeaderSize;
                while (pos < recordsEnd)
                {
                    var framingError = PackFormat.ReadRecordHeader(data[(int)pos..(int)recordsEnd], pos, out var walked);
                    if (framingError is null && pos + walked.RecordLength > recordsEnd)
                    {
                        framingError = "record runs into the footer";
                    }

                    if (framingError is not null)
                    {
                        errors.Add($"record framing broken at offset {pos}: {framingError}");
                        break;
                    }

                    if (!indexed.Contains(pos))
                    {
                        records++;
                        try
                        {
                            var (content, _) = CheckRecord(data.Slice((int)pos, (int)walked.RecordLength), walked, pack.Id);
                            ArrayPool<byte>.Shared.Return(content);
                        }
                        catch (ChunkCorruptedException e)
                        {
                            errors.Add($"unindexed record of chunk {walked.Id.ToShortString()} at offset {pos}: {e.Reason}");
                        }
                    }

                    pos += walked.RecordLength;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        if (bad.Count > 0)
        {
            errors.Insert(0, $"{bad.Count} damaged records: {string.Join(", ", bad.Take(5).Select(b => $"chunk {b.Item1.Id.ToShortString()} at offset {b.Item1.Offset} ({b.Item2})"))}{(bad.Count > 5 ? ", ..." : "")}");
        }

        return new PackCheck(false, length, records, errors, bad);
    }
}
