using System.Buffers.Binary;

namespace Resh.Protocols.Resp;

/// <summary>
/// Reads an RDB file (Redis's snapshot format, versions up to 11: Redis 7.0 writes 10) as a stream of its parts:
/// length-encoded numbers, strings (integer-encoded and LZF-compressed ones decoded), raw numbers, and the running
/// CRC-64 of everything read so far, which the file's last 8 bytes must match. Strings are returned as spans into a
/// buffer of the reader's that is valid until the next read. Knows the file's encoding, not what the parts mean
/// (<see cref="RdbDigest"/> does).
/// </summary>
internal sealed class RdbReader
{
    private const int BufferSize = 1 << 20;
    private readonly Stream _stream;
    private readonly byte[] _buffer;
    private byte[] _scratch = [];
    private byte[] _compressed = [];
    private int _pos;
    private int _end;
    private int _crcFrom;
    private ulong _crc;
    private bool _crcOn = true;

    public RdbReader(Stream stream)
    {
        _stream = stream;
        _buffer = new byte[BufferSize];
    }

    /// <summary>
    /// Reads <paramref name="content"/>, held in memory, which becomes the reader's buffer (it may be changed): no buffer
    /// of 1 MiB of its own, whose zeroing cost more than digesting a small value (a DUMP's) many times over.
    /// </summary>
    public RdbReader(byte[] content)
    {
        _stream = Stream.Null;
        _buffer = content;
        _end = content.Length;
    }

    /// <summary>Bytes consumed so far (for error messages).</summary>
    public long Offset { get; private set; }

    /// <summary>The CRC-64 (Jones, reflected, as Redis computes it) of every byte read so far.</summary>
    public ulong Crc
    {
        get
        {
            FlushCrc();
            return _crc;
        }
    }

    /// <summary>Stops the CRC at the current position (the checksum itself is not part of it).</summary>
    public void EndCrc()
    {
        FlushCrc();
        _crcOn = false;
    }

    private void FlushCrc()
    {
        if (_crcOn && _pos > _crcFrom)
        {
            _crc = Crc64.Update(_crc, _buffer.AsSpan(_crcFrom, _pos - _crcFrom));
        }

        _crcFrom = _pos;
    }

    private bool Fill()
    {
        FlushCrc();
        var left = _end - _pos;
        if (left > 0)
        {
            Buffer.BlockCopy(_buffer, _pos, _buffer, 0, left);
        }

        _pos = 0;
        _crcFrom = 0;
        _end = left;
        var read = _stream.Read(_buffer, _end, _buffer.Length - _end);
        _end += read;
        return read > 0;
    }

    private InvalidDataException Cut(string what) => new($"the file ends inside {what} at byte {Offset}");

    public byte ReadByte()
    {
        if (_pos == _end && !Fill())
        {
            throw Cut("a record");
        }

        Offset++;
        return _buffer[_pos++];
    }

    /// <summary>The next <paramref name="count"/> raw bytes (at most the buffer's size), valid until the next read.</summary>
    public ReadOnlySpan<byte> Take(int count)
    {
        while (_end - _pos < count)
        {
            if (!Fill())
            {
                throw Cut("a record");
            }
        }

        var span = _buffer.AsSpan(_pos, count);
        _pos += count;
        Offset += count;
        return span;
    }

    /// <summary>Copies the next bytes into <paramref name="target"/>, however many.</summary>
    private void ReadInto(Span<byte> target)
    {
        while (target.Length > 0)
        {
            if (_pos == _end && !Fill())
            {
                throw Cut("a string");
            }

            var n = Math.Min(target.Length, _end - _pos);
            _buffer.AsSpan(_pos, n).CopyTo(target);
            _pos += n;
            Offset += n;
            target = target[n..];
        }
    }

    public uint ReadUInt32LittleEndian() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public long ReadInt64LittleEndian() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

    public double ReadDoubleLittleEndian() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8));

    /// <summary>A raw 16-byte stream id (two big-endian 64-bit numbers).</summary>
    public (ulong Ms, ulong Seq) ReadStreamId()
    {
        var raw = Take(16);
        return (BinaryPrimitives.ReadUInt64BigEndian(raw), BinaryPrimitives.ReadUInt64BigEndian(raw[8..]));
    }

    /// <summary>A length-encoded number; <paramref name="special"/> is set for the special string encodings (its low 6 bits).</summary>
    public ulong ReadLength(out bool special)
    {
        special = false;
        var first = ReadByte();
        switch (first >> 6)
        {
            case 0:
                return (ulong)(first & 0x3F);
            case 1:
                return ((ulong)(first & 0x3F) << 8) | ReadByte();
            case 2:
                return first switch
                {
                    0x80 => BinaryPrimitives.ReadUInt32BigEndian(Take(4)),
                    0x81 => BinaryPrimitives.ReadUInt64BigEndian(Take(8)),
                    _ => throw new InvalidDataException($"unknown length encoding 0x{first:x2} at byte {Offset - 1}"),
                };
            default:
                special = true;
                return (ulong)(first & 0x3F);
        }
    }

    /// <summary>A length-encoded number that must not be a special encoding.</summary>
    public long ReadLength()
    {
        var value = ReadLength(out var special);
        if (special || value > long.MaxValue)
        {
            throw new InvalidDataException($"expected a length at byte {Offset}");
        }

        return (long)value;
    }

    /// <summary>A length-encoded 64-bit number as its bits (stream ids and counters; -1 is written as 2^64 - 1).</summary>
    public long ReadNumber()
    {
        var value = ReadLength(out var special);
        return special ? throw new InvalidDataException($"expected a number at byte {Offset}") : unchecked((long)value);
    }

    /// <summary>A string object: its bytes (integers as their decimal text), valid until the next read.</summary>
    public ReadOnlySpan<byte> ReadString()
    {
        var length = ReadLength(out var special);
        if (special)
        {
            switch (length)
            {
                case 0:
                    return Decimal((sbyte)ReadByte());
                case 1:
                    return Decimal(BinaryPrimitives.ReadInt16LittleEndian(Take(2)));
                case 2:
                    return Decimal(BinaryPrimitives.ReadInt32LittleEndian(Take(4)));
                case 3:
                    return ReadCompressed();
                default:
                    throw new InvalidDataException($"unknown string encoding {length} at byte {Offset}");
            }
        }

        if (length > int.MaxValue)
        {
            throw new InvalidDataException($"a string of {length} bytes at byte {Offset}");
        }

        var n = (int)length;
        if (n <= BufferSize / 2)
        {
            return Take(n);
        }

        var target = Scratch(n);
        ReadInto(target);
        return target;
    }

    private Span<byte> Scratch(int length)
    {
        if (_scratch.Length < length)
        {
            _scratch = new byte[Math.Max(length, _scratch.Length * 2)];
        }

        return _scratch.AsSpan(0, length);
    }

    private ReadOnlySpan<byte> Decimal(long value)
    {
        var target = Scratch(20);
        value.TryFormat(target, out var written, default, System.Globalization.CultureInfo.InvariantCulture);
        return target[..written];
    }

    private ReadOnlySpan<byte> ReadCompressed()
    {
        var compressedLength = ReadLength();
        var length = ReadLength();
        if (compressedLength > int.MaxValue || length > int.MaxValue)
        {
            throw new InvalidDataException($"a compressed string of {length} bytes at byte {Offset}");
        }

        if (_compressed.Length < compressedLength)
        {
            _compressed = new byte[Math.Max((int)compressedLength, _compressed.Length * 2)];
        }

        var input = _compressed.AsSpan(0, (int)compressedLength);
        ReadInto(input);
        var output = Scratch((int)length);
        Lzf.Decompress(input, output);
        return output;
    }
}

/// <summary>LZF decompression, the format Redis compresses RDB strings with.</summary>
internal static class Lzf
{
    public static void Decompress(ReadOnlySpan<byte> input, Span<byte> output)
    {
        int ip = 0, op = 0;
        while (ip < input.Length)
        {
            int ctrl = input[ip++];
            if (ctrl < 32)
            {
                // A literal run of ctrl + 1 bytes.
                var run = ctrl + 1;
                if (ip + run > input.Length || op + run > output.Length)
                {
                    throw new InvalidDataException("a damaged compressed string (literal run past its end)");
                }

                input.Slice(ip, run).CopyTo(output[op..]);
                ip += run;
                op += run;
                continue;
            }

            // A back reference: length (3 bits, or 7 + one more byte) + 2, distance 13 bits + 1.
            var length = ctrl >> 5;
            if (length == 7)
            {
                length += ip < input.Length ? input[ip++] : throw new InvalidDataException("a damaged compressed string (cut back reference)");
            }

            if (ip >= input.Length)
            {
                throw new InvalidDataException("a damaged compressed string (cut back reference)");
            }

            var from = op - ((ctrl & 0x1F) << 8) - 1 - input[ip++];
            length += 2;
            if (from < 0 || op + length > output.Length)
            {
                throw new InvalidDataException("a damaged compressed string (back reference out of range)");
            }

            // Byte by byte: the source may overlap what is being written.
            for (var i = 0; i < length; i++)
            {
                output[op++] = output[from++];
            }
        }

        if (op != output.Length)
        {
            throw new InvalidDataException($"a damaged compressed string ({op} bytes instead of {output.Length})");
        }
    }
}

/// <summary>CRC-64 with the Jones polynomial, reflected, initial value 0: the checksum at the end of an RDB file.</summary>
internal static class Crc64
{
    private static readonly ulong[] Table = Build();

    private static ulong[] Build()
    {
        const ulong poly = 0x95AC9329AC4BC9B5UL;
        var table = new ulong[256 * 8];
        for (var i = 0; i < 256; i++)
        {
            var crc = (ulong)i;
            for (var bit = 0; bit < 8; bit++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ poly : crc >> 1;
            }

            table[i] = crc;
        }

        // Slicing by 8: table k holds the CRC of a byte followed by k zero bytes.
        for (var k = 1; k < 8; k++)
        {
            for (var i = 0; i < 256; i++)
            {
                var previous = table[((k - 1) * 256) + i];
                table[(k * 256) + i] = (previous >> 8) ^ table[(int)(previous & 0xFF)];
            }
        }

        return table;
    }

    public static ulong Update(ulong crc, ReadOnlySpan<byte> data)
    {
        var table = Table;
        while (data.Length >= 8)
        {
            crc ^= BinaryPrimitives.ReadUInt64LittleEndian(data);
            crc = table[(7 * 256) + (int)(crc & 0xFF)]
                ^ table[(6 * 256) + (int)((crc >> 8) & 0xFF)]
                ^ table[(5 * 256) + (int)((crc >> 16) & 0xFF)]
                ^ table[(4 * 256) + (int)((crc >> 24) & 0xFF)]
                ^ table[(3 * 256) + (int)((crc >> 32) & 0xFF)]
                ^ table[(2 * 256) + (int)((crc >> 40) & 0xFF)]
                ^ table[256 + (int)((crc >> 48) & 0xFF)]
                ^ table[(int)(crc >> 56)];
            data = data[8..];
        }

        foreach (var b in data)
        {
            crc = table[(int)((crc ^ b) & 0xFF)] ^ (crc >> 8);
        }

        return crc;
    }
}
