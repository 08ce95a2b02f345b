// Over 400 lines: the store's core (open, lock, index, packs, manifests); snapshot, restore, verify and maintenance are its other partial files.
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Native;

namespace Resh.Checkpoints;

/// <summary>
/// A content-addressed store of directory snapshots: files are cut into content-defined chunks named
/// by their SHA-256, new chunks are appended to pack files of several MiB, an index maps chunks to
/// packs, and one manifest per snapshot lists the tree and its chunks. The store knows bytes only.
/// </summary>
/// <remarks>
/// <para><b>On disk</b> (<c>STORE/</c>): <c>config.json</c> (format version, chunking parameters),
/// <c>lock</c> (flock'ed by the writer), <c>packs/XX/ID.pack</c>, <c>index/ID.idx</c>,
/// <c>snapshots/ID.json</c>; files named <c>.tmp-*</c> are uncommitted. See <see cref="PackFormat"/>
/// and <see cref="IndexFile"/> for the byte layouts.</para>
/// <para><b>Commit order</b>: packs are written and fsynced, then their pack directories fsynced;
/// then an index file listing them is written to a temporary name, fsynced, renamed and its directory
/// fsynced; only then is the manifest written the same way. A snapshot exists exactly when its
/// manifest does, and a manifest only names chunks that an index file names in durable packs.
/// Compaction writes new packs (durable), then one consolidated index that supersedes every older
/// index file (durable), and only then deletes the old index files and packs. When a writer opens
/// the store it deletes what no committed index or manifest reaches: temporary files, superseded
/// index files and unindexed packs (unless an index file is damaged: then it keeps every pack).</para>
/// <para><b>Processes</b>: one writer at a time (flock on <c>lock</c>, released by the kernel when the
/// writer dies); any number of readers (<see cref="StoreOptions.ReadOnly"/>) without the lock. A
/// reader that races a compaction and finds a pack gone reloads the index once and retries.</para>
/// <para><b>Inside one process</b>: snapshots run one at a time; a snapshot may run while prune or
/// compaction run. New chunks always go to packs of the snapshot's own, which no index knows before
/// the snapshot commits, so compaction never touches them. Chunks a running snapshot reuses from the
/// index are pinned (lookup and pin are one step under the state lock), and compaction counts pinned
/// chunks as live; when it plans, it also drops the dead chunks of the packs it will delete from the
/// in-memory index, so no snapshot can start reusing them afterwards. Index and manifest commits,
/// prune's deletions and compaction's plan and commit are serialized by one commit gate.</para>
/// </remarks>
public sealed partial class CheckpointStore : IAsyncDisposable, IDisposable
{
    private const string TempPrefix = ".tmp-";
    private const string ConfigFileName = "config.json";
    private const string LockFileName = "lock";

    private readonly string _root;
    private readonly string _packsDir;
    private readonly string _indexDir;
    private readonly string _snapshotsDir;
    private readonly StoreOptions _options;
    private readonly ILogger _logger;
    private readonly IStoreFaults? _faults;
    private readonly Lock _stateLock = new();
    private readonly List<HashSet<ChunkId>> _pins = [];
    private readonly SemaphoreSlim _commitGate = new(1, 1);
    private readonly SemaphoreSlim _snapshotGate = new(1, 1);
    private readonly SemaphoreSlim _compactGate = new(1, 1);
    private StoreLock? _lock;
    private FastCdcChunker _chunker = null!;
    private IndexState _index = new();
    private Dictionary<string, SnapshotManifest> _manifests = new(StringComparer.Ordinal);
    private List<DamagedItem> _damagedManifests = [];
    private int _disposed;

    private CheckpointStore(string root, StoreOptions options)
    {
        _root = root;
        _packsDir = Path.Combine(root, "packs");
        _indexDir = Path.Combine(root, "index");
        _snapshotsDir = Path.Combine(root, "snapshots");
        _options = options;
        _logger = options.Logger ?? NullLogger.Instance;
        _faults = options.Faults;
    }

    /// <summary>Full path of the store's directory.</summary>
    public string StorePath => _root;

    public bool IsReadOnly => _options.ReadOnly;

    /// <summary>Chunking parameters of this store (fixed when it was created).</summary>
    public (int Min, int Average, int Max) ChunkSizes => (_chunker.MinSize, _chunker.AverageSize, _chunker.MaxSize);

    /// <summary>
    /// Opens the store at <paramref name="path"/>. A writer (the default) takes the store's lock,
    /// creates the store if <see cref="StoreOptions.CreateIfMissing"/> allows, and removes leftovers
    /// of interrupted operations. A reader (<see cref="StoreOptions.ReadOnly"/>) changes nothing.
    /// </summary>
    /// <exception cref="StoreNotFoundException">No readable store at the path.</exception>
    /// <exception cref="StoreLockedException">Another process is writing to the store.</exception>
    public static async Task<CheckpointStore> OpenAsync(string path, StoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        options ??= new StoreOptions();
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid store options: " + string.Join("; ", errors), nameof(options));
        }

        var store = new CheckpointStore(Path.GetFullPath(path), options);
        try
        {
            await store.InitializeAsync(cancellationToken).ConfigureAwait(false);
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The committed snapshots, oldest first.</summary>
    public async Task<IReadOnlyList<SnapshotInfo>> ListAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        await RefreshManifestsIfReaderAsync(cancellationToken).ConfigureAwait(false);
        lock (_stateLock)
        {
            return [.. _manifests.Select(m => m.Value.ToInfo(m.Key)).OrderBy(s => s.Time).ThenBy(s => s.Id, StringComparer.Ordinal)];
        }
    }

    /// <summary>
    /// Resolves a snapshot id, a unique prefix of one (at least 4 hex digits), or <c>latest</c>.
    /// </summary>
    /// <exception cref="SnapshotNotFoundException">Nothing, or more than one snapshot, matches.</exception>
    public async Task<SnapshotInfo> FindSnapshotAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        await RefreshManifestsIfReaderAsync(cancellationToken).ConfigureAwait(false);
        lock (_stateLock)
        {
            return Resolve(idOrPrefix).Info;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _lock?.Dispose();
            _lock = null;
            _commitGate.Dispose();
            _snapshotGate.Dispose();
            _compactGate.Dispose();
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var configPath = Path.Combine(_root, ConfigFileName);
        if (_options.ReadOnly)
        {
            if (!Directory.Exists(_root))
            {
                throw new StoreNotFoundException(_root, "the directory does not exist");
            }

            if (!File.Exists(configPath))
            {
                throw new StoreNotFoundException(_root, $"{ConfigFileName} is missing (not a checkpoint store)");
            }
        }
        else
        {
            if (!Directory.Exists(_root))
            {
                if (!_options.CreateIfMissing)
                {
                    throw new StoreNotFoundException(_root, "the directory does not exist");
                }

                Directory.CreateDirectory(_root);
                Libc.FsyncDirectory(Path.GetDirectoryName(_root) ?? _root);
            }
            else if (!File.Exists(configPath))
            {
                var foreign = Directory.EnumerateFileSystemEntries(_root)
                    .Select(Path.GetFileName)
                    .FirstOrDefault(n => n is not (LockFileName or "packs" or "index" or "snapshots") && !n!.StartsWith(TempPrefix, StringComparison.Ordinal));
                if (foreign is not null)
                {
                    throw new StoreNotFoundException(_root, $"the directory is not empty (it holds '{foreign}') and has no {ConfigFileName}; refusing to create a store in it");
                }
            }

            _lock = StoreLock.Acquire(_root, Path.Combine(_root, LockFileName));
            if (!File.Exists(configPath))
            {
                if (!_options.CreateIfMissing)
                {
                    throw new StoreNotFoundException(_root, $"{ConfigFileName} is missing (not a checkpoint store)");
                }

                await CreateLayoutAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        var config = await ReadConfigAsync(configPath, cancellationToken).ConfigureAwait(false);
        _chunker = new FastCdcChunker(config.MinChunkSize, config.AverageChunkSize, config.MaxChunkSize);
        await ReloadAsync(cancellationToken).ConfigureAwait(false);
        if (!_options.ReadOnly)
        {
            CleanUp();
        }

        StoreLog.Opened(_logger, _root, _options.ReadOnly ? "reader" : "writer", _manifests.Count, _index.Packs.Count, _index.Chunks.Count);
    }

    private async Task CreateLayoutAsync(CancellationToken cancellationToken)
    {
        foreach (var dir in new[] { _packsDir, _indexDir, _snapshotsDir })
        {
            Directory.CreateDirectory(dir);
        }

        Libc.FsyncDirectory(_root);
        var config = new StoreConfig
        {
            Id = RandomNumberGenerator.GetHexString(32, lowercase: true),
            Created = _options.Clock.GetUtcNow(),
            MinChunkSize = _options.MinChunkSize,
            AverageChunkSize = _options.AverageChunkSize,
            MaxChunkSize = _options.MaxChunkSize,
        };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(config, ManifestJsonContext.Default.StoreConfig);
        await WriteAtomicAsync(_root, ConfigFileName, bytes, null, null, cancellationToken).ConfigureAwait(false);
        StoreLog.Created(_logger, _root);
    }

    private async Task<StoreConfig> ReadConfigAsync(string configPath, CancellationToken cancellationToken)
    {
        StoreConfig? config;
        try
        {
            var bytes = await File.ReadAllBytesAsync(configPath, cancellationToken).ConfigureAwait(false);
            config = JsonSerializer.Deserialize(bytes, ManifestJsonContext.Default.StoreConfig);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new StoreNotFoundException(_root, $"cannot read {ConfigFileName}: {e.Message}", e);
        }

        if (config is null || config.Version != 1)
        {
            throw new StoreNotFoundException(_root, $"unsupported store format version {config?.Version}");
        }

        try
        {
            _ = new FastCdcChunker(config.MinChunkSize, config.AverageChunkSize, config.MaxChunkSize);
        }
        catch (ArgumentException e)
        {
            throw new StoreNotFoundException(_root, $"{ConfigFileName} is damaged: {e.Message}", e);
        }

        return config;
    }

    /// <summary>Reads the index files and manifests from disk and replaces the in-memory state.</summary>
    private async Task ReloadAsync(CancellationToken cancellationToken)
    {
        var index = await LoadIndexAsync(cancellationToken).ConfigureAwait(false);
        var (manifests, damaged) = await LoadManifestsAsync(cancellationToken).ConfigureAwait(false);
        lock (_stateLock)
        {
            _index = index;
            _manifests = manifests;
            _damagedManifests = damaged;
        }
    }

    private Task RefreshIfReaderAsync(CancellationToken cancellationToken) =>
        _options.ReadOnly ? ReloadAsync(cancellationToken) : Task.CompletedTask;

    /// <summary>
    /// For readers: re-reads the manifests only. The index is re-read lazily, when a chunk is not in
    /// it or its pack is gone (see <see cref="ReadChunkAsync"/>).
    /// </summary>
    private async Task RefreshManifestsIfReaderAsync(CancellationToken cancellationToken)
    {
        if (_options.ReadOnly)
        {
            var (manifests, damaged) = await LoadManifestsAsync(cancellationToken).ConfigureAwait(false);
            lock (_stateLock)
            {
                _manifests = manifests;
                _damagedManifests = damaged;
            }
        }
    }

    private async Task<IndexState> LoadIndexAsync(CancellationToken cancellationToken)
    {
        var state = new IndexState();
        var decoded = new List<(string Id, List<PackInfo> Packs)>();
        var superseded = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in EnumerateFiles(_indexDir, "*.idx").Order(StringComparer.Ordinal))
        {
            var id = Path.GetFileNameWithoutExtension(file);
            if (!IndexFile.IsId(id))
            {
                continue;
            }

            byte[] bytes;
            try
            {
                bytes = await File.ReadAllBytesAsync(file, cancellationToken).ConfigureAwait(false);
            }
            catch (FileNotFoundException)
            {
                continue; // deleted by a compaction since the listing: it was superseded
            }

            state.Files.Add(id);
            var error = IndexFile.Decode(bytes, out var packs, out var replaced);
            if (error is not null)
            {
                state.Damaged.Add(new DamagedItem(id, error));
                StoreLog.DamagedIndex(_logger, id, error);
                continue;
            }

            superseded.UnionWith(replaced);
            decoded.Add((id, packs));
        }

        foreach (var (id, packs) in decoded)
        {
            if (superseded.Contains(id))
            {
                state.Superseded.Add(id);
                continue;
            }

            foreach (var pack in packs)
            {
                state.AddPack(pack);
            }
        }

        // A damaged file that a healthy one supersedes does not matter any more.
        state.Damaged.RemoveAll(d => superseded.Contains(d.Id));
        return state;
    }

    private async Task<(Dictionary<string, SnapshotManifest>, List<DamagedItem>)> LoadManifestsAsync(CancellationToken cancellationToken)
    {
        var manifests = new Dictionary<string, SnapshotManifest>(StringComparer.Ordinal);
        var damaged = new List<DamagedItem>();
        foreach (var file in EnumerateFiles(_snapshotsDir, "*.json"))
        {
            var id = Path.GetFileNameWithoutExtension(file);
            if (!SnapshotManifest.IsId(id))
            {
                continue;
            }

            byte[] bytes;
            try
            {
                bytes = await File.ReadAllBytesAsync(file, cancellationToken).ConfigureAwait(false);
            }
            catch (FileNotFoundException)
            {
                continue; // pruned since the listing
            }

            string? error = null;
            if (SnapshotManifest.IdOf(bytes) != id)
            {
                error = "manifest content does not match its id (damaged)";
            }
            else
            {
                try
                {
                    manifests[id] = SnapshotManifest.Deserialize(bytes);
                }
                catch (JsonException e)
                {
                    error = $"manifest is not valid: {e.Message}";
                }
            }

            if (error is not null)
            {
                damaged.Add(new DamagedItem(id, error));
                StoreLog.DamagedManifest(_logger, id, error);
            }
        }

        return (manifests, damaged);
    }

    /// <summary>Deletes what no committed index or manifest reaches. Writers only, at open.</summary>
    private void CleanUp()
    {
        var count = 0;
        long bytes = 0;
        var touched = new HashSet<string>(StringComparer.Ordinal);
        void Delete(string file)
        {
            try
            {
                var length = new FileInfo(file).Length;
                File.Delete(file);
                count++;
                bytes += length;
                touched.Add(Path.GetDirectoryName(file)!);
            }
            catch (FileNotFoundException)
            {
            }
        }

        foreach (var dir in new[] { _root, _indexDir, _snapshotsDir })
        {
            foreach (var file in EnumerateFiles(dir, TempPrefix + "*"))
            {
                Delete(file);
            }
        }

        foreach (var id in _index.Superseded)
        {
            Delete(Path.Combine(_indexDir, id + ".idx"));
        }

        _index.Files.ExceptWith(_index.Superseded);
        _index.Superseded.Clear();

        if (_index.Damaged.Count == 0 && Directory.Exists(_packsDir))
        {
            foreach (var file in Directory.EnumerateFiles(_packsDir, "*.pack", SearchOption.AllDirectories))
            {
                if (!_index.Packs.ContainsKey(Path.GetFileNameWithoutExtension(file)))
                {
                    Delete(file);
                }
            }
        }

        foreach (var dir in touched)
        {
            Libc.FsyncDirectory(dir);
        }

        if (count > 0)
        {
            StoreLog.CleanedUp(_logger, count, bytes);
        }
    }

    /// <summary>Writes a file so that it appears complete or not at all: temporary file, fsync, rename, directory fsync.</summary>
    private async Task WriteAtomicAsync(string directory, string fileName, byte[] content, FaultPoint? afterTemp, FaultPoint? afterRename, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(directory, TempPrefix + RandomNumberGenerator.GetHexString(16, lowercase: true));
        var target = Path.Combine(directory, fileName);
        var stream = new FileStream(temp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.Read, BufferSize = 0 });
        await using (stream.ConfigureAwait(false))
        {
            await stream.WriteAsync(content, cancellationToken).ConfigureAwait(false);
            stream.Flush(flushToDisk: true);
        }

        Hit(afterTemp, temp);
        File.Move(temp, target, overwrite: true);
        Hit(afterRename, target);
        Libc.FsyncDirectory(directory);
    }

    private void Hit(FaultPoint? point, string? path)
    {
        if (point is { } p)
        {
            _faults?.Hit(p, path);
        }
    }

    private (string Id, SnapshotManifest Manifest, SnapshotInfo Info) Resolve(string idOrPrefix)
    {
        var key = idOrPrefix.Trim().ToLowerInvariant();
        if (key == "latest")
        {
            var latest = _manifests.OrderByDescending(m => m.Value.Time).ThenByDescending(m => m.Key, StringComparer.Ordinal).FirstOrDefault();
            return latest.Value is null
                ? throw new SnapshotNotFoundException(idOrPrefix, _root, "the store has no snapshots")
                : (latest.Key, latest.Value, latest.Value.ToInfo(latest.Key));
        }

        if (_manifests.TryGetValue(key, out var exact))
        {
            return (key, exact, exact.ToInfo(key));
        }

        if (key.Length >= 4)
        {
            var matches = _manifests.Keys.Where(k => k.StartsWith(key, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
            if (matches.Count == 1)
            {
                var m = _manifests[matches[0]];
                return (matches[0], m, m.ToInfo(matches[0]));
            }

            if (matches.Count > 1)
            {
                throw new SnapshotNotFoundException(idOrPrefix, _root, $"the prefix is ambiguous: {string.Join(", ", matches)}");
            }
        }

        var damaged = _damagedManifests.FirstOrDefault(d => d.Id.StartsWith(key, StringComparison.Ordinal));
        throw new SnapshotNotFoundException(idOrPrefix, _root, damaged is null ? null : $"its manifest is damaged: {damaged.Reason}");
    }

    private void EnsureWritable()
    {
        ThrowIfDisposed();
        if (_options.ReadOnly)
        {
            throw new InvalidOperationException($"Checkpoint store {_root} was opened read-only.");
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private static IEnumerable<string> EnumerateFiles(string directory, string pattern) =>
        Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory, pattern, new EnumerationOptions { AttributesToSkip = 0, MatchCasing = MatchCasing.CaseSensitive })
            : [];

    private static long ElapsedMs(long startTimestamp) => (long)Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds;
}

/// <summary>Where a chunk is: the pack and the record.</summary>
internal readonly record struct ChunkLocation(PackInfo Pack, PackEntry Entry);

/// <summary>The index as loaded from the index files, plus what the writer has committed since.</summary>
internal sealed class IndexState
{
    public Dictionary<ChunkId, ChunkLocation> Chunks { get; } = [];

    public Dictionary<string, PackInfo> Packs { get; } = new(StringComparer.Ordinal);

    /// <summary>Index file ids on disk (active, superseded or damaged).</summary>
    public HashSet<string> Files { get; } = new(StringComparer.Ordinal);

    public HashSet<string> Superseded { get; } = new(StringComparer.Ordinal);

    public List<DamagedItem> Damaged { get; } = [];

    public void AddPack(PackInfo pack)
    {
        Packs[pack.Id] = pack;
        foreach (var entry in pack.Entries)
        {
            Chunks.TryAdd(entry.Id, new ChunkLocation(pack, entry));
        }
    }

    /// <summary>True when the index's location for the entry's chunk is this very record.</summary>
    public bool IsIndexed(PackInfo pack, in PackEntry entry) =>
        Chunks.TryGetValue(entry.Id, out var location) && ReferenceEquals(location.Pack, pack) && location.Entry.Offset == entry.Offset;
}
