using System.Buffers;
using System.IO.Compression;
using ZstdSharp;

namespace Resh.Checkpoints;

/// <summary>
/// Compression of chunk payloads. A record's flags name its codec, so a store holds chunks of every
/// codec it ever wrote and reads them all: changing <see cref="StoreOptions.Compression"/> affects new
/// chunks only. Zstandard contexts are kept per thread (they are not thread-safe, and creating one
/// per chunk costs more than compressing a small chunk).
/// </summary>
internal static class ChunkCodec
{
    /// <summary>Chunks smaller than this are stored raw: the frame overhead eats what they would save.</summary>
    public const int MinCompressedSize = 512;

    [ThreadStatic]
    private static Compressor? t_compressor;

    [ThreadStatic]
    private static Decompressor? t_decompressor;

    /// <summary>The record flag of a codec; 0 for raw.</summary>
    public static byte FlagOf(ChunkCompression compression) => compression switch
    {
        ChunkCompression.Brotli => PackFormat.FlagBrotli,
        ChunkCompression.Zstd => PackFormat.FlagZstd,
        _ => 0,
    };

    /// <summary>
    /// Compresses <paramref name="raw"/> into a rented buffer when that saves at least an eighth;
    /// null when the chunk is better stored raw. <paramref name="flag"/> names the codec used.
    /// </summary>
    public static byte[]? TryCompress(ChunkCompression compression, int level, ReadOnlySpan<byte> raw, out int length, out byte flag)
    {
        length = 0;
        flag = FlagOf(compression);
        if (flag == 0 || raw.Length < MinCompressedSize)
        {
            return null;
        }

        var limit = raw.Length - (raw.Length / 8);
        var buffer = ArrayPool<byte>.Shared.Rent(raw.Length);
        var fits = compression == ChunkCompression.Brotli
            ? BrotliEncoder.TryCompress(raw, buffer.AsSpan(0, limit), out length, quality: 1, window: 22)
            : TryZstd(level, raw, buffer.AsSpan(0, limit), out length);
        if (fits && length < limit)
        {
            return buffer;
        }

        ArrayPool<byte>.Shared.Return(buffer);
        return null;
    }

    /// <summary>Decodes a stored payload into <paramref name="destination"/> (its exact raw length); returns an error text when it cannot.</summary>
    public static string? Decode(byte flags, ReadOnlySpan<byte> payload, Span<byte> destination)
    {
        switch (flags)
        {
            case 0:
                if (payload.Length != destination.Length)
                {
                    return "the raw payload's length differs from the chunk's";
                }

                payload.CopyTo(destination);
                return null;
            case PackFormat.FlagBrotli:
                return BrotliDecoder.TryDecompress(payload, destination, out var written) && written == destination.Length
                    ? null
                    : "the compressed payload does not decompress";
            case PackFormat.FlagZstd:
                try
                {
                    var decompressor = t_decompressor ??= new Decompressor();
                    return decompressor.TryUnwrap(payload, destination, out var unwrapped) && unwrapped == destination.Length
                        ? null
                        : "the compressed payload does not decompress to the chunk's length";
                }
                catch (ZstdException e)
                {
                    return $"the compressed payload does not decompress ({e.Message})";
                }

            default:
                return $"unknown record flags 0x{flags:x2}";
        }
    }

    private static bool TryZstd(int level, ReadOnlySpan<byte> raw, Span<byte> destination, out int length)
    {
        var compressor = t_compressor;
        if (compressor is null || compressor.Level != level)
        {
            compressor?.Dispose();
            compressor = t_compressor = new Compressor(level);
        }

        try
        {
            return compressor.TryWrap(raw, destination, out length);
        }
        catch (ZstdException)
        {
            // Destination too small is reported this way by some paths: the chunk is stored raw.
            length = 0;
            return false;
        }
    }
}
