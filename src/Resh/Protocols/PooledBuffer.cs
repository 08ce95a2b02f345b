using System.Buffers;

namespace Resh.Protocols;

/// <summary>
/// A growable byte buffer backed by <see cref="ArrayPool{T}.Shared"/>. Codecs keep one per session and
/// reuse it from request to request; <see cref="Reset"/> hands oversized arrays back to the pool so a
/// single large request does not pin its memory for the life of the connection.
/// </summary>
internal sealed class PooledBuffer : IBufferWriter<byte>, IDisposable
{
    /// <summary>Arrays larger than this go back to the pool on <see cref="Reset"/>.</summary>
    internal const int RetainLimit = 1 << 20;

    private const int MinimumSize = 256;

    private byte[] _array = [];
    private int _count;

    public int Count => _count;

    public ReadOnlyMemory<byte> WrittenMemory => _array.AsMemory(0, _count);

    public ReadOnlySpan<byte> WrittenSpan => _array.AsSpan(0, _count);

    /// <summary>Forgets the content; keeps the array unless it is larger than <see cref="RetainLimit"/>.</summary>
    public void Reset()
    {
        _count = 0;
        if (_array.Length > RetainLimit)
        {
            ReturnArray();
        }
    }

    public void Advance(int count)
    {
        if ((uint)count > (uint)(_array.Length - _count))
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }

        _count += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsMemory(_count);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsSpan(_count);
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(_array.AsSpan(_count));
        _count += bytes.Length;
    }

    public void Write(in ReadOnlySequence<byte> bytes)
    {
        var length = checked((int)bytes.Length);
        Ensure(length);
        bytes.CopyTo(_array.AsSpan(_count));
        _count += length;
    }

    public void WriteByte(byte value)
    {
        Ensure(1);
        _array[_count++] = value;
    }

    /// <summary>Makes room for <paramref name="sizeHint"/> more bytes (at least one).</summary>
    public void Ensure(int sizeHint)
    {
        if (sizeHint < 1)
        {
            sizeHint = 1;
        }

        if (_array.Length - _count >= sizeHint)
        {
            return;
        }

        var needed = (long)_count + sizeHint;
        if (needed > Array.MaxLength)
        {
            throw new InsufficientMemoryException("buffer would exceed the maximum array length");
        }

        var size = Math.Max(Math.Max((long)_array.Length * 2, needed), MinimumSize);
        size = Math.Min(size, Array.MaxLength);
        var next = ArrayPool<byte>.Shared.Rent((int)size);
        _array.AsSpan(0, _count).CopyTo(next);
        ReturnArray();
        _array = next;
    }

    public void Dispose()
    {
        _count = 0;
        ReturnArray();
    }

    private void ReturnArray()
    {
        if (_array.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_array);
        }

        _array = [];
    }
}
