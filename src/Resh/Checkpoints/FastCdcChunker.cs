using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Resh.Checkpoints;

/// <summary>
/// Content-defined chunking in the manner of FastCDC: a gear rolling hash (one shift and one add
/// per byte), cut-point skipping up to the minimum size, and normalized chunking with two masks: a
/// harder one (two bits more than the average needs) before the average size and an easier one (two
/// bits fewer) after it, which pulls chunk sizes towards the average. Boundaries depend only on the
/// content of the last 64 bytes, so an insertion moves the boundaries near it and no others.
/// </summary>
/// <remarks>
/// The gear table is derived from SHA-256 of a fixed label, so it is the same in every process and
/// every version of the store format: chunk boundaries, and therefore deduplication, are stable.
/// </remarks>
internal sealed class FastCdcChunker
{
    private static readonly ulong[] Gear = BuildGearTable();

    private readonly int _minSize;
    private readonly int _averageSize;
    private readonly int _maxSize;
    private readonly ulong _hardMask;
    private readonly ulong _easyMask;

    public FastCdcChunker(int minSize, int averageSize, int maxSize)
    {
        if (minSize < 64 || averageSize <= minSize || maxSize <= averageSize || !BitOperations.IsPow2(averageSize))
        {
            throw new ArgumentException($"Chunk sizes must satisfy 64 <= min < average < max with a power-of-two average (got {minSize}/{averageSize}/{maxSize}).");
        }

        _minSize = minSize;
        _averageSize = averageSize;
        _maxSize = maxSize;
        var bits = BitOperations.Log2((uint)averageSize);
        _hardMask = TopBits(bits + 2);
        _easyMask = TopBits(Math.Max(1, bits - 2));
    }

    public int MinSize => _minSize;

    public int AverageSize => _averageSize;

    public int MaxSize => _maxSize;

    /// <summary>
    /// Length of the next chunk at the start of <paramref name="data"/>. A span shorter than the
    /// maximum size is taken to end the stream: its tail becomes the last chunk.
    /// </summary>
    public int FindCut(ReadOnlySpan<byte> data)
    {
        var length = data.Length;
        if (length <= _minSize)
        {
            return length;
        }

        var normal = Math.Min(_averageSize, length);
        var limit = Math.Min(_maxSize, length);
        ref var gear = ref MemoryMarshal.GetArrayDataReference(Gear);
        ref var bytes = ref MemoryMarshal.GetReference(data);
        ulong hash = 0;
        var i = _minSize;
        var hard = _hardMask;
        for (; i < normal; i++)
        {
            hash = (hash << 1) + Unsafe.Add(ref gear, Unsafe.Add(ref bytes, i));
            if ((hash & hard) == 0)
            {
                return i + 1;
            }
        }

        var easy = _easyMask;
        for (; i < limit; i++)
        {
            hash = (hash << 1) + Unsafe.Add(ref gear, Unsafe.Add(ref bytes, i));
            if ((hash & easy) == 0)
            {
                return i + 1;
            }
        }

        return limit;
    }

    /// <summary>
    /// Splits <paramref name="stream"/> into chunks without holding more than a few maximum-sized
    /// chunks in memory. Each chunk is only valid until the enumerator moves on.
    /// </summary>
    public async IAsyncEnumerable<ReadOnlyMemory<byte>> ChunkAsync(Stream stream, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(2 * _maxSize, 1 << 20));
        try
        {
            var start = 0;
            var end = 0;
            var eof = false;
            while (true)
            {
                if (!eof && end - start < _maxSize)
                {
                    if (start > 0)
                    {
                        buffer.AsSpan(start, end - start).CopyTo(buffer);
                        end -= start;
                        start = 0;
                    }

                    while (end < buffer.Length)
                    {
                        var read = await stream.ReadAsync(buffer.AsMemory(end), cancellationToken).ConfigureAwait(false);
                        if (read == 0)
                        {
                            eof = true;
                            break;
                        }

                        end += read;
                    }
                }

                if (end == start)
                {
                    yield break;
                }

                var cut = FindCut(buffer.AsSpan(start, Math.Min(end - start, _maxSize)));
                yield return buffer.AsMemory(start, cut);
                start += cut;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static ulong TopBits(int count) => count >= 64 ? ulong.MaxValue : ~(ulong.MaxValue >> count);

    private static ulong[] BuildGearTable()
    {
        var table = new ulong[256];
        var label = Encoding.ASCII.GetBytes("resh checkpoint store gear v1 ");
        var input = new byte[label.Length + 1];
        label.CopyTo(input, 0);
        Span<byte> hash = stackalloc byte[32];
        for (var i = 0; i < table.Length; i++)
        {
            input[^1] = (byte)i;
            SHA256.HashData(input, hash);
            table[i] = BinaryPrimitives.ReadUInt64LittleEndian(hash);
        }

        return table;
    }
}
