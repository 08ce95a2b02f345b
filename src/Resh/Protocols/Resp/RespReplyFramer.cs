using System.Buffers;

namespace Resh.Protocols.Resp;

/// <summary>
/// Finds the end of one complete RESP2/RESP3 reply: simple types (+ - : _ , # ( ), blob types ($ ! =),
/// aggregates (* % ~ &gt;) at any depth, nulls ($-1, *-1) and attributes (|, framed together with the
/// reply they annotate). RESP3 streamed types (?, ;, .) are not produced by Redis and are Invalid.
/// </summary>
/// <remarks>
/// Nesting needs no stack: one counter holds how many values are still owed (an aggregate of n adds n,
/// a map 2n, an attribute 2n without counting itself). Nothing is allocated per call. After an
/// Incomplete result the framer remembers where it stopped; when the next buffer starts at the same
/// position (the unconsumed input plus more), scanning resumes there, so a large reply arriving in many
/// reads is scanned once. A buffer starting elsewhere simply restarts the scan.
/// </remarks>
public sealed class RespReplyFramer : IReplyFramer
{
    /// <summary>Longest accepted simple line (+ - , ( and friends); no correct server sends more.</summary>
    public const int MaxLineBytes = 1 << 20;

    /// <summary>Longest accepted blob (a bulk reply is held in one array).</summary>
    public static readonly long MaxBlobBytes = Array.MaxLength;

    private bool _resumeValid;
    private SequencePosition _resumeStart;
    private long _resumeOffset;
    private long _resumePending;

    public FrameStatus TryFrame(in ReadOnlySequence<byte> buffer, out SequencePosition end)
    {
        end = buffer.Start;
        var reader = new SequenceReader<byte>(buffer);
        long pending = 1;
        if (_resumeValid && buffer.Start.Equals(_resumeStart) && buffer.Length >= _resumeOffset)
        {
            reader.Advance(_resumeOffset);
            pending = _resumePending;
        }

        _resumeValid = false;
        while (pending > 0)
        {
            var valueStart = reader.Consumed;
            var status = ReadValue(ref reader, ref pending);
            if (status == FrameStatus.Incomplete)
            {
                _resumeValid = true;
                _resumeStart = buffer.Start;
                _resumeOffset = valueStart;
                _resumePending = pending;
                return FrameStatus.Incomplete;
            }

            if (status == FrameStatus.Invalid)
            {
                return FrameStatus.Invalid;
            }
        }

        end = reader.Position;
        return FrameStatus.Complete;
    }

    /// <summary>Reads one value header (and the body of simple and blob types); aggregates add to <paramref name="pending"/>.</summary>
    private static FrameStatus ReadValue(ref SequenceReader<byte> reader, ref long pending)
    {
        if (!reader.TryRead(out var type))
        {
            return FrameStatus.Incomplete;
        }

        switch (type)
        {
            case (byte)'+':
            case (byte)'-':
            case (byte)',':
                {
                    var status = SkipLine(ref reader, out var length);
                    if (status == FrameStatus.Complete)
                    {
                        if (type == (byte)',' && length == 0)
                        {
                            return FrameStatus.Invalid;
                        }

                        pending--;
                    }

                    return status;
                }

            case (byte)'(':
                {
                    var status = SkipBigNumber(ref reader);
                    if (status == FrameStatus.Complete)
                    {
                        pending--;
                    }

                    return status;
                }

            case (byte)':':
                {
                    var status = ReadNumber(ref reader, out _);
                    if (status == FrameStatus.Complete)
                    {
                        pending--;
                    }

                    return status;
                }

            case (byte)'_':
                return ExpectLine(ref reader, ""u8, ref pending);

            case (byte)'#':
                {
                    if (!reader.TryPeek(out var flag))
                    {
                        return FrameStatus.Incomplete;
                    }

                    return flag switch
                    {
                        (byte)'t' => ExpectLine(ref reader, "t"u8, ref pending),
                        (byte)'f' => ExpectLine(ref reader, "f"u8, ref pending),
                        _ => FrameStatus.Invalid,
                    };
                }

            case (byte)'$':
            case (byte)'!':
            case (byte)'=':
                {
                    var status = ReadNumber(ref reader, out var length);
                    if (status != FrameStatus.Complete)
                    {
                        return status;
                    }

                    if (length == -1 && type == (byte)'$')
                    {
                        pending--;
                        return FrameStatus.Complete;
                    }

                    if (length < 0 || length > MaxBlobBytes || (type == (byte)'=' && length < 4))
                    {
                        return FrameStatus.Invalid;
                    }

                    if (reader.Remaining < length + 2)
                    {
                        return FrameStatus.Incomplete;
                    }

                    reader.Advance(length);
                    if (!reader.IsNext("\r\n"u8, advancePast: true))
                    {
                        return FrameStatus.Invalid;
                    }

                    pending--;
                    return FrameStatus.Complete;
                }

            case (byte)'*':
            case (byte)'~':
            case (byte)'>':
            case (byte)'%':
            case (byte)'|':
                {
                    var status = ReadNumber(ref reader, out var count);
                    if (status != FrameStatus.Complete)
                    {
                        return status;
                    }

                    if (count == -1 && type == (byte)'*')
                    {
                        pending--;
                        return FrameStatus.Complete;
                    }

                    if (count < 0 || count > int.MaxValue || pending > long.MaxValue / 4)
                    {
                        return FrameStatus.Invalid;
                    }

                    pending += type switch
                    {
                        (byte)'%' => (2 * count) - 1,
                        (byte)'|' => 2 * count,
                        _ => count - 1,
                    };
                    return FrameStatus.Complete;
                }

            default:
                return FrameStatus.Invalid;
        }
    }

    /// <summary>Skips a line ending in "\r\n"; <paramref name="length"/> is its length without the ending.</summary>
    private static FrameStatus SkipLine(ref SequenceReader<byte> reader, out long length)
    {
        length = 0;
        var start = reader.Consumed;
        if (!reader.TryAdvanceTo((byte)'\n', advancePastDelimiter: true))
        {
            return reader.Remaining > MaxLineBytes ? FrameStatus.Invalid : FrameStatus.Incomplete;
        }

        length = reader.Consumed - start - 2;
        if (length < 0 || length > MaxLineBytes)
        {
            return FrameStatus.Invalid;
        }

        reader.Rewind(2);
        var ok = reader.IsNext("\r\n"u8, advancePast: true);
        return ok ? FrameStatus.Complete : FrameStatus.Invalid;
    }

    private static FrameStatus SkipBigNumber(ref SequenceReader<byte> reader)
    {
        var start = reader.Position;
        var status = SkipLine(ref reader, out var length);
        if (status != FrameStatus.Complete)
        {
            return status;
        }

        if (length == 0)
        {
            return FrameStatus.Invalid;
        }

        var digits = new SequenceReader<byte>(reader.Sequence.Slice(start, length));
        digits.IsNext((byte)'-', advancePast: true);
        if (digits.End)
        {
            return FrameStatus.Invalid;
        }

        while (!digits.End)
        {
            var span = digits.UnreadSpan;
            if (span.IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0)
            {
                return FrameStatus.Invalid;
            }

            digits.Advance(span.Length);
        }

        return FrameStatus.Complete;
    }

    private static FrameStatus ExpectLine(ref SequenceReader<byte> reader, ReadOnlySpan<byte> content, ref long pending)
    {
        var needed = content.Length + 2;
        if (reader.Remaining < needed)
        {
            Span<byte> partial = stackalloc byte[3];
            partial = partial[..(int)reader.Remaining];
            reader.TryCopyTo(partial);
            Span<byte> expected = stackalloc byte[3];
            content.CopyTo(expected);
            expected[content.Length] = (byte)'\r';
            expected[content.Length + 1] = (byte)'\n';
            return partial.SequenceEqual(expected[..partial.Length]) ? FrameStatus.Incomplete : FrameStatus.Invalid;
        }

        Span<byte> line = stackalloc byte[3];
        line = line[..needed];
        reader.TryCopyTo(line);
        if (!line[..content.Length].SequenceEqual(content) || line[content.Length] != (byte)'\r' || line[content.Length + 1] != (byte)'\n')
        {
            return FrameStatus.Invalid;
        }

        reader.Advance(needed);
        pending--;
        return FrameStatus.Complete;
    }

    private static FrameStatus ReadNumber(ref SequenceReader<byte> reader, out long value) =>
        RespEncoding.ReadNumberLine(ref reader, out value) switch
        {
            NumberLine.Ok => FrameStatus.Complete,
            NumberLine.Incomplete => FrameStatus.Incomplete,
            _ => FrameStatus.Invalid,
        };
}
