using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace Resh.Checkpoints;

public sealed partial class CheckpointStore
{
    /// <summary>
    /// Restores a snapshot (id, unique prefix or <c>latest</c>) into <paramref name="targetDirectory"/>,
    /// which must be missing or empty: file contents bit for bit, empty files and directories, modes,
    /// modification times and symbolic links. Every chunk is checked against its SHA-256 as it is read;
    /// damage throws <see cref="ChunkCorruptedException"/> naming the chunk, the pack and the file.
    /// Not kept: owners, extended attributes, hard links (restored as separate files), the
    /// modification times of symbolic links and of the target directory itself. <paramref name="progress"/> hears the
    /// bytes written so far out of the snapshot's, from the restoring threads.
    /// </summary>
    public async Task<SnapshotInfo> RestoreAsync(string snapshotId, string targetDirectory, CancellationToken cancellationToken = default, IProgress<StoreProgress>? progress = null)
    {
        ThrowIfDisposed();
        await RefreshManifestsIfReaderAsync(cancellationToken).ConfigureAwait(false);
        SnapshotManifest manifest;
        SnapshotInfo info;
        lock (_stateLock)
        {
            (_, manifest, info) = Resolve(snapshotId);
        }

        var target = Path.GetFullPath(targetDirectory);
        if (File.Exists(target) || (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any()))
        {
            throw new IOException($"Restore target {target} must be a missing or empty directory.");
        }

        Directory.CreateDirectory(target);
        using var packs = new PackReaderCache(_packsDir);
        var directories = new List<(string Path, TreeEntry Entry)>();
        var files = new List<FileRestore>();
        foreach (var entry in manifest.Tree)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var path = ResolveInside(target, entry.Path, info.Id);
            switch (entry.Type)
            {
                case TreeEntryType.Directory:
                    Directory.CreateDirectory(path);
                    directories.Add((path, entry));
                    break;
                case TreeEntryType.Symlink:
                    File.CreateSymbolicLink(path, entry.Target ?? throw new CheckpointStoreException($"Snapshot {info.Id}: symbolic link {entry.Path} has no target."));
                    break;
                default:
                    files.Add(await PlanFileAsync(entry, path, cancellationToken).ConfigureAwait(false));
                    break;
            }
        }

        // Every chunk of every file at once, a few at a time: reads, checks and decompression overlap
        // across chunks and files, and each chunk is written at its own offset.
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = RestoreParallelism, CancellationToken = cancellationToken };
        var total = files.Sum(f => f.Chunks.Sum(c => (long)c.Length));
        var written = 0L;
        progress?.Report(new StoreProgress(0, total));
        try
        {
            await Parallel.ForEachAsync(
                files.SelectMany(file => file.Chunks),
                parallel,
                async (chunk, ct) =>
                {
                    await RestoreChunkAsync(chunk, packs, ct).ConfigureAwait(false);
                    progress?.Report(new StoreProgress(Interlocked.Add(ref written, chunk.Length), total));
                }).ConfigureAwait(false);
        }
        finally
        {
            foreach (var file in files)
            {
                file.Close();
            }
        }

        foreach (var file in files)
        {
            file.Finish();
        }

        // Directories last and deepest first: their mtimes change while children are created, and a
        // read-only mode would forbid creating them.
        for (var i = directories.Count - 1; i >= 0; i--)
        {
            var (path, entry) = directories[i];
            var directory = new DirectoryInfo(path);
            directory.LastWriteTimeUtc = entry.MTime;
            SetMode(directory, entry.Mode);
        }

        return info;
    }

    private int RestoreParallelism => _options.RestoreParallelism > 0 ? _options.RestoreParallelism : Math.Max(2, Environment.ProcessorCount);

    /// <summary>
    /// Creates the file and lays out its chunks: each one's offset from the raw lengths in the index,
    /// so they can be written in any order. A file whose chunks do not add up to its size fails here,
    /// before anything is read.
    /// </summary>
    private async Task<FileRestore> PlanFileAsync(TreeEntry entry, string path, CancellationToken cancellationToken)
    {
        var ids = entry.Chunks ?? [];
        var lengths = new int[ids.Count];
        for (var attempt = 0; ; attempt++)
        {
            ChunkId? missing = null;
            lock (_stateLock)
            {
                for (var i = 0; i < ids.Count && missing is null; i++)
                {
                    if (_index.Chunks.TryGetValue(ids[i], out var location))
                    {
                        lengths[i] = location.Entry.RawLength;
                    }
                    else
                    {
                        missing = ids[i];
                    }
                }
            }

            if (missing is null)
            {
                break;
            }

            if (attempt > 0 || !_options.ReadOnly)
            {
                throw new ChunkCorruptedException(missing.Value, "", 0, $"it is missing from the index (needed by file {entry.Path})");
            }

            await ReloadAsync(cancellationToken).ConfigureAwait(false);
        }

        var total = lengths.Sum(length => (long)length);
        if (total != entry.Size)
        {
            throw new CheckpointStoreException($"File {entry.Path}: its chunks hold {total} bytes, the manifest says {entry.Size}.");
        }

        return new FileRestore(entry, path, ids, lengths);
    }

    private async ValueTask RestoreChunkAsync(ChunkRestore chunk, PackReaderCache packs, CancellationToken cancellationToken)
    {
        byte[] buffer;
        int length;
        try
        {
            (buffer, length) = await ReadChunkAsync(chunk.Id, packs, cancellationToken).ConfigureAwait(false);
        }
        catch (ChunkCorruptedException e)
        {
            throw new ChunkCorruptedException(e.Chunk, e.Pack, e.Offset, $"{e.Reason} (needed by file {chunk.File.Entry.Path})");
        }

        try
        {
            if (length != chunk.Length)
            {
                throw new CheckpointStoreException($"File {chunk.File.Entry.Path}: chunk {chunk.Id.ToShortString()} holds {length} bytes, the index said {chunk.Length}.");
            }

            await RandomAccess.WriteAsync(chunk.File.Handle, buffer.AsMemory(0, length), chunk.Offset, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        chunk.File.ChunkWritten();
    }

    /// <summary>
    /// One file being restored: created (and its space reserved) when planned, opened by its first
    /// chunk and closed after its last, so a restore of many files keeps only a few open.
    /// </summary>
    private sealed class FileRestore
    {
        private readonly Lock _lock = new();
        private SafeFileHandle? _handle;
        private int _pending;

        public FileRestore(TreeEntry entry, string path, IReadOnlyList<ChunkId> ids, int[] lengths)
        {
            Entry = entry;
            Path = path;
            File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileOptions.None, entry.Size).Dispose();
            _pending = ids.Count;
            var chunks = new ChunkRestore[ids.Count];
            long offset = 0;
            for (var i = 0; i < chunks.Length; i++)
            {
                chunks[i] = new ChunkRestore(this, ids[i], offset, lengths[i]);
                offset += lengths[i];
            }

            Chunks = chunks;
        }

        public TreeEntry Entry { get; }

        public string Path { get; }

        public IReadOnlyList<ChunkRestore> Chunks { get; }

        public SafeFileHandle Handle
        {
            get
            {
                lock (_lock)
                {
                    return _handle ??= File.OpenHandle(Path, FileMode.Open, FileAccess.Write, FileShare.None);
                }
            }
        }

        public void ChunkWritten()
        {
            if (Interlocked.Decrement(ref _pending) == 0)
            {
                Close();
            }
        }

        public void Close()
        {
            lock (_lock)
            {
                _handle?.Dispose();
            }
        }

        /// <summary>Sets the modification time and mode once the content is complete.</summary>
        public void Finish()
        {
            File.SetLastWriteTimeUtc(Path, Entry.MTime);
            SetMode(new FileInfo(Path), Entry.Mode);
        }
    }

    private sealed record ChunkRestore(FileRestore File, ChunkId Id, long Offset, int Length);

    private static void SetMode(FileSystemInfo info, int mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            info.UnixFileMode = (UnixFileMode)mode;
        }
    }

    private static string ResolveInside(string root, string relative, string snapshotId)
    {
        var segments = relative.Split('/');
        if (relative.Length == 0 || relative.Contains('\0', StringComparison.Ordinal) || segments.Any(s => s is "" or "." or ".."))
        {
            throw new CheckpointStoreException($"Snapshot {snapshotId} has an invalid path '{relative}'.");
        }

        return Path.Combine([root, .. segments]);
    }

    /// <summary>
    /// Reads and checks one chunk; returns a rented buffer holding its content (return it to the
    /// shared pool). A pack that vanished (a compaction moved the chunk) sends it back to the index once.
    /// </summary>
    private async Task<(byte[] Buffer, int Length)> ReadChunkAsync(ChunkId id, PackReaderCache packs, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            ChunkLocation location;
            bool found;
            lock (_stateLock)
            {
                found = _index.Chunks.TryGetValue(id, out location);
            }

            if (!found)
            {
                if (attempt == 0 && _options.ReadOnly)
                {
                    await ReloadAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }

                throw new ChunkCorruptedException(id, "", 0, "it is missing from the index");
            }

            try
            {
                return await ReadRecordAsync(location, packs, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (attempt == 0 && e is FileNotFoundException or DirectoryNotFoundException)
            {
                packs.Forget(location.Pack.Id);
                if (_options.ReadOnly)
                {
                    await ReloadAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                throw new ChunkCorruptedException(id, location.Pack.Id, location.Entry.Offset, "its pack file is missing");
            }
        }
    }

    private static async Task<(byte[] Buffer, int Length)> ReadRecordAsync(ChunkLocation location, PackReaderCache packs, CancellationToken cancellationToken)
    {
        var entry = location.Entry;
        using var lease = packs.Rent(location.Pack.Id);
        var handle = lease.Handle;
        var recordLength = (int)entry.RecordLength;
        var record = ArrayPool<byte>.Shared.Rent(recordLength);
        try
        {
            var read = 0;
            while (read < recordLength)
            {
                var n = await RandomAccess.ReadAsync(handle, record.AsMemory(read, recordLength - read), entry.Offset + read, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            if (read < recordLength)
            {
                throw new ChunkCorruptedException(entry.Id, location.Pack.Id, entry.Offset, "the pack is truncated");
            }

            return CheckRecord(record.AsSpan(0, recordLength), entry, location.Pack.Id);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(record);
        }
    }

    /// <summary>Checks a record read from a pack against its index entry and returns the chunk's content in a rented buffer.</summary>
    private static (byte[] Buffer, int Length) CheckRecord(ReadOnlySpan<byte> record, in PackEntry expected, string packId)
    {
        var error = PackFormat.ReadRecordHeader(record, expected.Offset, out var header);
        if (error is null && (header.Id != expected.Id || header.StoredLength != expected.StoredLength || header.RawLength != expected.RawLength || header.Flags != expected.Flags))
        {
            error = "the record header does not match the index";
        }

        if (error is not null)
        {
            throw new ChunkCorruptedException(expected.Id, packId, expected.Offset, error);
        }

        var payload = record.Slice(PackFormat.RecordHeaderSize, expected.StoredLength);
        var content = ArrayPool<byte>.Shared.Rent(Math.Max(1, expected.RawLength));
        try
        {
            var decodeError = ChunkCodec.Decode(expected.Flags, payload, content.AsSpan(0, expected.RawLength));
            if (decodeError is not null)
            {
                throw new ChunkCorruptedException(expected.Id, packId, expected.Offset, decodeError);
            }

            if (ChunkId.Compute(content.AsSpan(0, expected.RawLength)) != expected.Id)
            {
                throw new ChunkCorruptedException(expected.Id, packId, expected.Offset, "the content does not match its SHA-256");
            }

            return (content, expected.RawLength);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(content);
            throw;
        }
    }

    /// <summary>
    /// Open pack handles of one operation, a few at a time, shared by its parallel reads: a handle is
    /// leased for each read, and one pushed out of the cache closes when its last lease ends.
    /// </summary>
    private sealed class PackReaderCache(string packsDir) : IDisposable
    {
        private const int Capacity = 16;
        private readonly Lock _lock = new();
        private readonly Dictionary<string, Slot> _slots = new(StringComparer.Ordinal);
        private readonly Queue<Slot> _order = new();

        public Lease Rent(string packId)
        {
            lock (_lock)
            {
                if (!_slots.TryGetValue(packId, out var slot))
                {
                    while (_slots.Count >= Capacity && _order.TryDequeue(out var oldest))
                    {
                        if (_slots.Remove(oldest.PackId))
                        {
                            Evict(oldest);
                        }
                    }

                    slot = new Slot(packId, File.OpenHandle(PackWriter.PathOf(packsDir, packId), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
                    _slots[packId] = slot;
                    _order.Enqueue(slot);
                }

                slot.Leases++;
                return new Lease(this, slot);
            }
        }

        /// <summary>Drops a pack's handle (its file vanished); reads still using it finish first.</summary>
        public void Forget(string packId)
        {
            lock (_lock)
            {
                if (_slots.Remove(packId, out var slot))
                {
                    Evict(slot);
                }
            }
        }

        public void Dispose()
        {
            lock (_lock)
            {
                foreach (var slot in _slots.Values)
                {
                    Evict(slot);
                }

                _slots.Clear();
                _order.Clear();
            }
        }

        private static void Evict(Slot slot)
        {
            slot.Evicted = true;
            if (slot.Leases == 0)
            {
                slot.Handle.Dispose();
            }
        }

        private void Return(Slot slot)
        {
            lock (_lock)
            {
                if (--slot.Leases == 0 && slot.Evicted)
                {
                    slot.Handle.Dispose();
                }
            }
        }

        public sealed class Slot(string packId, SafeFileHandle handle)
        {
            public string PackId { get; } = packId;

            public SafeFileHandle Handle { get; } = handle;

            public int Leases { get; set; }

            public bool Evicted { get; set; }
        }

        public readonly struct Lease : IDisposable
        {
            private readonly PackReaderCache _cache;
            private readonly Slot _slot;

            public Lease(PackReaderCache cache, Slot slot)
            {
                _cache = cache;
                _slot = slot;
            }

            public SafeFileHandle Handle => _slot.Handle;

            public void Dispose() => _cache.Return(_slot);
        }
    }
}
