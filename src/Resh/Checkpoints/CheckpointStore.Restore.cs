using System.Buffers;
using System.IO.Compression;
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
    /// modification times of symbolic links and of the target directory itself.
    /// </summary>
    public async Task<SnapshotInfo> RestoreAsync(string snapshotId, string targetDirectory, CancellationToken cancellationToken = default)
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
                    await RestoreFileAsync(entry, path, packs, cancellationToken).ConfigureAwait(false);
                    break;
            }
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

    private async Task RestoreFileAsync(TreeEntry entry, string path, PackReaderCache packs, CancellationToken cancellationToken)
    {
        long written = 0;
        var stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0, PreallocationSize = entry.Size });
        await using (stream.ConfigureAwait(false))
        {
            foreach (var id in entry.Chunks ?? [])
            {
                byte[] buffer;
                int length;
                try
                {
                    (buffer, length) = await ReadChunkAsync(id, packs, cancellationToken).ConfigureAwait(false);
                }
                catch (ChunkCorruptedException e)
                {
                    throw new ChunkCorruptedException(e.Chunk, e.Pack, e.Offset, $"{e.Reason} (needed by file {entry.Path})");
                }

                try
                {
                    await stream.WriteAsync(buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                    written += length;
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }

        if (written != entry.Size)
        {
            throw new CheckpointStoreException($"File {entry.Path}: its chunks hold {written} bytes, the manifest says {entry.Size}.");
        }

        File.SetLastWriteTimeUtc(path, entry.MTime);
        SetMode(new FileInfo(path), entry.Mode);
    }

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
        var handle = packs.Get(location.Pack.Id);
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
            if (expected.IsCompressed)
            {
                if (!BrotliDecoder.TryDecompress(payload, content.AsSpan(0, expected.RawLength), out var written) || written != expected.RawLength)
                {
                    throw new ChunkCorruptedException(expected.Id, packId, expected.Offset, "the compressed payload does not decompress");
                }
            }
            else
            {
                payload.CopyTo(content);
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

    /// <summary>Open pack handles of one operation, a few at a time.</summary>
    private sealed class PackReaderCache(string packsDir) : IDisposable
    {
        private const int Capacity = 16;
        private readonly Dictionary<string, SafeFileHandle> _handles = new(StringComparer.Ordinal);
        private readonly Queue<string> _order = new();

        public SafeFileHandle Get(string packId)
        {
            if (_handles.TryGetValue(packId, out var handle))
            {
                return handle;
            }

            if (_handles.Count >= Capacity)
            {
                var oldest = _order.Dequeue();
                _handles.Remove(oldest, out var old);
                old?.Dispose();
            }

            handle = File.OpenHandle(PackWriter.PathOf(packsDir, packId), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            _handles[packId] = handle;
            _order.Enqueue(packId);
            return handle;
        }

        public void Forget(string packId)
        {
            if (_handles.Remove(packId, out var handle))
            {
                handle.Dispose();
                var rest = _order.Where(p => p != packId).ToList();
                _order.Clear();
                foreach (var p in rest)
                {
                    _order.Enqueue(p);
                }
            }
        }

        public void Dispose()
        {
            foreach (var handle in _handles.Values)
            {
                handle.Dispose();
            }

            _handles.Clear();
        }
    }
}
