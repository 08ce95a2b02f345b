using System.Buffers;
using System.Diagnostics;
using Resh.Native;

namespace Resh.Checkpoints;

public sealed partial class CheckpointStore
{
    /// <summary>
    /// Takes a snapshot of <paramref name="sourceDirectory"/>: regular files (content, mode, mtime),
    /// directories (mode, mtime, also when empty) and symbolic links (target). Other kinds of entries
    /// (sockets, FIFOs, devices) are skipped with a warning. The caller keeps the directory still while
    /// the snapshot runs (for a live service: snapshot a frozen copy). The snapshot is committed, and
    /// visible to <see cref="ListAsync"/>, when this returns; if it throws, no snapshot was committed
    /// (new chunks already indexed stay as garbage for compaction).
    /// </summary>
    public async Task<SnapshotInfo> SnapshotAsync(string sourceDirectory, IReadOnlyDictionary<string, string>? labels = null, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        var source = Path.GetFullPath(sourceDirectory);
        if (!Directory.Exists(source))
        {
            throw new DirectoryNotFoundException($"Snapshot source {source} does not exist or is not a directory.");
        }

        var started = Stopwatch.GetTimestamp();
        await _snapshotGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        var session = new SnapshotSession(this);
        lock (_stateLock)
        {
            _pins.Add(session.Pins);
        }

        try
        {
            var manifest = new SnapshotManifest { Time = _options.Clock.GetUtcNow() };
            if (labels is not null)
            {
                foreach (var (key, value) in labels)
                {
                    manifest.Labels[key] = value;
                }
            }

            await AddDirectoryAsync(source, "", manifest, session, cancellationToken).ConfigureAwait(false);
            Hit(FaultPoint.SnapshotDataWritten, null);
            var packs = await session.SealAsync(cancellationToken).ConfigureAwait(false);
            manifest.Summary.NewChunks = session.NewChunks;
            manifest.Summary.ReusedChunks = session.ReusedChunks;
            manifest.Summary.AddedBytes = packs.Sum(p => p.Size);

            // The data is durable; from here on the commit is not cancelled (that would only waste it).
            string id;
            await _commitGate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                if (packs.Count > 0)
                {
                    // Once the index write has begun its packs may be referenced on disk: never delete them on failure.
                    session.IndexCommitted = true;
                    await CommitIndexAsync(packs, CancellationToken.None).ConfigureAwait(false);
                }

                var bytes = manifest.Serialize();
                id = SnapshotManifest.IdOf(bytes);
                await WriteAtomicAsync(_snapshotsDir, id + ".json", bytes, FaultPoint.ManifestTempWritten, FaultPoint.ManifestRenamed, CancellationToken.None).ConfigureAwait(false);
                lock (_stateLock)
                {
                    _manifests[id] = manifest;
                }
            }
            finally
            {
                _commitGate.Release();
            }

            var s = manifest.Summary;
            StoreLog.SnapshotCommitted(_logger, id, s.Files, s.LogicalBytes, s.NewChunks, s.AddedBytes, s.ReusedChunks, ElapsedMs(started));
            return manifest.ToInfo(id);
        }
        catch (Exception e) when (e is not InjectedFaultException)
        {
            await session.AbortAsync(e.Message).ConfigureAwait(false);
            throw;
        }
        finally
        {
            lock (_stateLock)
            {
                _pins.Remove(session.Pins);
            }

            await session.DisposeAsync().ConfigureAwait(false);
            _snapshotGate.Release();
        }
    }

    /// <summary>Writes an index file for new packs and adds them to the in-memory index. Caller holds the commit gate.</summary>
    private async Task CommitIndexAsync(IReadOnlyCollection<PackInfo> packs, CancellationToken cancellationToken)
    {
        var id = IndexFile.NewId();
        var bytes = IndexFile.Encode(packs, []);
        await WriteAtomicAsync(_indexDir, id + ".idx", bytes, FaultPoint.IndexTempWritten, FaultPoint.IndexRenamed, cancellationToken).ConfigureAwait(false);
        lock (_stateLock)
        {
            _index.Files.Add(id);
            foreach (var pack in packs)
            {
                _index.AddPack(pack);
            }
        }
    }

    private async Task AddDirectoryAsync(string fullPath, string relativePath, SnapshotManifest manifest, SnapshotSession session, CancellationToken cancellationToken)
    {
        var options = new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = false, RecurseSubdirectories = false, ReturnSpecialDirectories = false };
        var entries = new DirectoryInfo(fullPath).EnumerateFileSystemInfos("*", options).ToList();
        entries.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        foreach (var info in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var relative = relativePath.Length == 0 ? info.Name : relativePath + "/" + info.Name;
            if (string.Equals(info.FullName, _root, StringComparison.Ordinal))
            {
                continue; // the store itself, kept inside the tree it snapshots
            }

            if ((info.Attributes & FileAttributes.ReparsePoint) != 0 && info.LinkTarget is { } target)
            {
                manifest.Tree.Add(new TreeEntry { Path = relative, Type = TreeEntryType.Symlink, Target = target, MTime = info.LastWriteTimeUtc });
                manifest.Summary.Symlinks++;
            }
            else if (info is DirectoryInfo)
            {
                manifest.Tree.Add(new TreeEntry { Path = relative, Type = TreeEntryType.Directory, Mode = (int)info.UnixFileMode, MTime = info.LastWriteTimeUtc });
                manifest.Summary.Directories++;
                await AddDirectoryAsync(info.FullName, relative, manifest, session, cancellationToken).ConfigureAwait(false);
            }
            else if (Libc.GetKind(info.FullName) is UnixFileKind.Other)
            {
                StoreLog.SkippedSpecialFile(_logger, info.FullName);
            }
            else
            {
                var entry = await AddFileAsync((FileInfo)info, relative, session, cancellationToken).ConfigureAwait(false);
                manifest.Tree.Add(entry);
                manifest.Summary.Files++;
                manifest.Summary.LogicalBytes += entry.Size;
            }
        }
    }

    private async Task<TreeEntry> AddFileAsync(FileInfo info, string relative, SnapshotSession session, CancellationToken cancellationToken)
    {
        var stream = new FileStream(info.FullName, new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.Read,
            Share = FileShare.ReadWrite | FileShare.Delete,
            BufferSize = 0,
            Options = FileOptions.SequentialScan,
        });
        await using (stream.ConfigureAwait(false))
        {
            var entry = new TreeEntry
            {
                Path = relative,
                Type = TreeEntryType.File,
                Mode = (int)info.UnixFileMode,
                MTime = info.LastWriteTimeUtc,
                Chunks = [],
            };
            await foreach (var chunk in _chunker.ChunkAsync(stream, cancellationToken).ConfigureAwait(false))
            {
                var id = ChunkId.Compute(chunk.Span);
                entry.Chunks.Add(id);
                entry.Size += chunk.Length;
                await session.AddAsync(id, chunk, cancellationToken).ConfigureAwait(false);
            }

            return entry;
        }
    }

    /// <summary>The packs one snapshot writes, and the chunks it reuses.</summary>
    private sealed class SnapshotSession(CheckpointStore store) : IAsyncDisposable
    {
        private readonly HashSet<ChunkId> _pending = [];
        private readonly List<PackInfo> _sealed = [];
        private readonly List<string> _paths = [];
        private readonly Queue<Task> _syncs = new();
        private PackWriter? _writer;

        /// <summary>Chunks this snapshot reuses from the index: live for compaction until the snapshot ends.</summary>
        public HashSet<ChunkId> Pins { get; } = [];

        public int NewChunks { get; private set; }

        public int ReusedChunks { get; private set; }

        public bool IndexCommitted { get; set; }

        public async Task AddAsync(ChunkId id, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
        {
            lock (store._stateLock)
            {
                if (store._index.Chunks.ContainsKey(id))
                {
                    Pins.Add(id);
                    ReusedChunks++;
                    return;
                }
            }

            if (!_pending.Add(id))
            {
                ReusedChunks++;
                return;
            }

            if (_writer is null)
            {
                _writer = await PackWriter.CreateAsync(store._packsDir, store._faults, store._options.Clock.GetUtcNow(), cancellationToken).ConfigureAwait(false);
                _paths.Add(_writer.Path);
            }

            var compressed = ChunkCodec.TryCompress(store._options.Compression, store._options.CompressionLevel, chunk.Span, out var length, out var flag);
            try
            {
                if (compressed is null)
                {
                    await _writer.AppendAsync(id, chunk, chunk.Length, 0, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await _writer.AppendAsync(id, compressed.AsMemory(0, length), chunk.Length, flag, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                if (compressed is not null)
                {
                    ArrayPool<byte>.Shared.Return(compressed);
                }
            }

            NewChunks++;
            if (_writer.Length >= store._options.PackTargetSize)
            {
                await RotateAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>Finishes the open pack and waits until every pack of the snapshot is durable.</summary>
        public async Task<IReadOnlyList<PackInfo>> SealAsync(CancellationToken cancellationToken)
        {
            if (_writer is not null)
            {
                await RotateAsync(cancellationToken).ConfigureAwait(false);
            }

            while (_syncs.Count > 0)
            {
                await _syncs.Dequeue().ConfigureAwait(false);
            }

            if (_sealed.Count > 0)
            {
                foreach (var dir in _paths.Select(Path.GetDirectoryName).Distinct())
                {
                    Libc.FsyncDirectory(dir!);
                }

                Libc.FsyncDirectory(store._packsDir);
            }

            return _sealed;
        }

        /// <summary>After a failure before the index write: deletes this snapshot's packs, which nothing references.</summary>
        public async Task AbortAsync(string reason)
        {
            await DrainAsync().ConfigureAwait(false);
            if (IndexCommitted)
            {
                return;
            }

            foreach (var path in _paths)
            {
                try
                {
                    File.Delete(path);
                }
                catch (IOException)
                {
                    // Left for the next writer's clean-up at open.
                }
            }

            StoreLog.SnapshotAborted(store._logger, _paths.Count, reason);
        }

        public ValueTask DisposeAsync() => new(DrainAsync());

        /// <summary>Closes the open pack and waits for pending fsyncs, ignoring their failures (the operation failed already).</summary>
        private async Task DrainAsync()
        {
            if (_writer is not null)
            {
                await _writer.DisposeAsync().ConfigureAwait(false);
                _writer = null;
            }

            while (_syncs.Count > 0)
            {
                try
                {
                    await _syncs.Dequeue().ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException or InjectedFaultException)
                {
                }
            }
        }

        private async Task RotateAsync(CancellationToken cancellationToken)
        {
            var writer = _writer!;
            _writer = null;
            PackInfo pack;
            try
            {
                pack = await writer.FinishAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await writer.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            StoreLog.PackSealed(store._logger, pack.Id, pack.Entries.Length, pack.Size);
            _sealed.Add(pack);
            _syncs.Enqueue(Task.Run(writer.Sync, CancellationToken.None));
            while (_syncs.Count > store._options.MaxPendingPackSyncs)
            {
                await _syncs.Dequeue().ConfigureAwait(false);
            }
        }
    }
}
