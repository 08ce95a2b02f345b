using System.Security.Cryptography;

namespace Resh.Checkpoints;

/// <summary>A pack as recorded in the index: its id, size, age and records.</summary>
internal sealed class PackInfo(string id, long size, DateTimeOffset created, PackEntry[] entries)
{
    public string Id { get; } = id;

    public long Size { get; } = size;

    public DateTimeOffset Created { get; } = created;

    public PackEntry[] Entries { get; } = entries;

    /// <summary>Bytes of all records (headers and payloads), live or dead.</summary>
    public long RecordBytes
    {
        get
        {
            long total = 0;
            foreach (var e in Entries)
            {
                total += e.RecordLength;
            }

            return total;
        }
    }
}

/// <summary>
/// Writes one pack file sequentially: header, records as chunks arrive, then the footer. The pack is
/// named by 128 random bits and lives at <c>packs/XX/ID.pack</c>; it means nothing until an index
/// file that lists it is durable.
/// </summary>
internal sealed class PackWriter : IAsyncDisposable
{
    private readonly FileStream _stream;
    private readonly List<PackEntry> _entries = [];
    private readonly byte[] _recordHeader = new byte[PackFormat.RecordHeaderSize];
    private readonly IStoreFaults? _faults;
    private readonly DateTimeOffset _created;
    private long _length;
    private bool _closed;

    private PackWriter(string id, string path, FileStream stream, IStoreFaults? faults, DateTimeOffset created)
    {
        Id = id;
        Path = path;
        _stream = stream;
        _faults = faults;
        _created = created;
    }

    public string Id { get; }

    public string Path { get; }

    public string Directory => System.IO.Path.GetDirectoryName(Path)!;

    public long Length => _length;

    public int Count => _entries.Count;

    public static string NewId() => RandomNumberGenerator.GetHexString(32, lowercase: true);

    public static string PathOf(string packsRoot, string id) => System.IO.Path.Combine(packsRoot, id[..2], id + ".pack");

    public static async Task<PackWriter> CreateAsync(string packsRoot, IStoreFaults? faults, DateTimeOffset created, CancellationToken cancellationToken)
    {
        var id = NewId();
        var path = PathOf(packsRoot, id);
        System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.Read,
            BufferSize = 256 * 1024,
        });
        var writer = new PackWriter(id, path, stream, faults, created);
        var header = new byte[PackFormat.HeaderSize];
        PackFormat.WriteHeader(header);
        await stream.WriteAsync(header, cancellationToken).ConfigureAwait(false);
        writer._length = header.Length;
        return writer;
    }

    /// <summary>Appends one record; <paramref name="stored"/> is the payload as stored (compressed or raw).</summary>
    public async ValueTask<PackEntry> AppendAsync(ChunkId id, ReadOnlyMemory<byte> stored, int rawLength, byte flags, CancellationToken cancellationToken)
    {
        var entry = new PackEntry(id, _length, stored.Length, rawLength, flags);
        PackFormat.WriteRecordHeader(_recordHeader, id, stored.Length, rawLength, flags);
        await _stream.WriteAsync(_recordHeader, cancellationToken).ConfigureAwait(false);
        await _stream.WriteAsync(stored, cancellationToken).ConfigureAwait(false);
        _length += entry.RecordLength;
        _entries.Add(entry);
        return entry;
    }

    /// <summary>Writes the footer and hands the data to the kernel; <see cref="Sync"/> makes it durable.</summary>
    public async Task<PackInfo> FinishAsync(CancellationToken cancellationToken)
    {
        var footer = new byte[(_entries.Count * PackFormat.EntrySize) + PackFormat.TailSize];
        for (var i = 0; i < _entries.Count; i++)
        {
            PackFormat.WriteEntry(footer.AsSpan(i * PackFormat.EntrySize), _entries[i]);
        }

        var entriesLength = _entries.Count * PackFormat.EntrySize;
        PackFormat.WriteTail(footer.AsSpan(entriesLength), _entries.Count, PackFormat.Crc32C(footer.AsSpan(0, entriesLength)));
        await _stream.WriteAsync(footer, cancellationToken).ConfigureAwait(false);
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        _length += footer.Length;
        _faults?.Hit(FaultPoint.PackWritten, Path);
        return new PackInfo(Id, _length, _created, [.. _entries]);
    }

    /// <summary>fsync and close; runs on a pool thread while the next pack is being written.</summary>
    public void Sync()
    {
        try
        {
            _stream.Flush(flushToDisk: true);
        }
        finally
        {
            _closed = true;
            _stream.Dispose();
        }

        _faults?.Hit(FaultPoint.PackSynced, Path);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_closed)
        {
            _closed = true;
            try
            {
                await _stream.DisposeAsync().ConfigureAwait(false);
            }
            catch (IOException)
            {
                // The pack is abandoned anyway; the next writer to open the store deletes it.
            }
        }
    }
}
