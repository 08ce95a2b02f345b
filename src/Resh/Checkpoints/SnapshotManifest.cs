using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Resh.Checkpoints;

/// <summary>
/// One snapshot, stored as <c>snapshots/ID.json</c> where ID is the first 16 hex digits of the
/// SHA-256 of the file's bytes (so a manifest checks itself). The tree lists every entry below the
/// snapshot's root in pre-order, with paths relative to the root and '/'-separated.
/// </summary>
internal sealed class SnapshotManifest
{
    public const int CurrentVersion = 1;

    public int Version { get; set; } = CurrentVersion;

    public DateTimeOffset Time { get; set; }

    public Dictionary<string, string> Labels { get; set; } = new(StringComparer.Ordinal);

    public ManifestSummary Summary { get; set; } = new();

    public List<TreeEntry> Tree { get; set; } = [];

    public byte[] Serialize() => JsonSerializer.SerializeToUtf8Bytes(this, ManifestJsonContext.Default.SnapshotManifest);

    public static SnapshotManifest Deserialize(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize(json, ManifestJsonContext.Default.SnapshotManifest) ?? throw new JsonException("manifest is null");

    /// <summary>The id of a manifest with these bytes.</summary>
    public static string IdOf(ReadOnlySpan<byte> bytes)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(bytes, hash);
        return Convert.ToHexStringLower(hash[..8]);
    }

    public static bool IsId(string text) => text.Length == 16 && text.All(char.IsAsciiHexDigitLower);

    public IEnumerable<ChunkId> ChunkIds()
    {
        foreach (var entry in Tree)
        {
            if (entry.Chunks is { } chunks)
            {
                foreach (var c in chunks)
                {
                    yield return c;
                }
            }
        }
    }

    public SnapshotInfo ToInfo(string id) => new()
    {
        Id = id,
        Time = Time,
        Labels = Labels,
        Files = Summary.Files,
        Directories = Summary.Directories,
        LogicalBytes = Summary.LogicalBytes,
        AddedBytes = Summary.AddedBytes,
        NewChunks = Summary.NewChunks,
        ReusedChunks = Summary.ReusedChunks,
    };
}

internal sealed class ManifestSummary
{
    public int Files { get; set; }

    public int Directories { get; set; }

    public int Symlinks { get; set; }

    public long LogicalBytes { get; set; }

    public int NewChunks { get; set; }

    public int ReusedChunks { get; set; }

    /// <summary>Pack bytes this snapshot added to the store.</summary>
    public long AddedBytes { get; set; }
}

internal enum TreeEntryType
{
    File,
    Directory,
    Symlink,
}

internal sealed class TreeEntry
{
    public string Path { get; set; } = "";

    public TreeEntryType Type { get; set; }

    /// <summary>Unix permission bits, including setuid/setgid/sticky.</summary>
    public int Mode { get; set; }

    public long Size { get; set; }

    public DateTime MTime { get; set; }

    /// <summary>Target of a symbolic link.</summary>
    public string? Target { get; set; }

    /// <summary>Content of a file, in order; empty for an empty file.</summary>
    public List<ChunkId>? Chunks { get; set; }
}

internal sealed class ChunkIdJsonConverter : JsonConverter<ChunkId>
{
    public override ChunkId Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        ChunkId.TryParse(reader.GetString(), out var id) ? id : throw new JsonException("invalid chunk id");

    public override void Write(Utf8JsonWriter writer, ChunkId value, JsonSerializerOptions options)
    {
        Span<byte> raw = stackalloc byte[ChunkId.Size];
        value.WriteTo(raw);
        Span<char> hex = stackalloc char[ChunkId.Size * 2];
        Convert.TryToHexStringLower(raw, hex, out _);
        writer.WriteStringValue(hex);
    }
}

/// <summary>The store's config file, <c>config.json</c>: format version and the chunking parameters fixed at creation.</summary>
internal sealed class StoreConfig
{
    public int Version { get; set; } = 1;

    public string Id { get; set; } = "";

    public DateTimeOffset Created { get; set; }

    public int MinChunkSize { get; set; }

    public int AverageChunkSize { get; set; }

    public int MaxChunkSize { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true,
    Converters = [typeof(ChunkIdJsonConverter)])]
[JsonSerializable(typeof(SnapshotManifest))]
[JsonSerializable(typeof(StoreConfig))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;
