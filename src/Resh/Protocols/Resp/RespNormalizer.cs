using System.Buffers;

namespace Resh.Protocols.Resp;

/// <summary>
/// Comparison form for <see cref="ErrorComparison.CodeOnly"/>: every error in a reply, at the top or nested in
/// aggregates (e.g. inside an EXEC array), is cut down to its code, its first word: "-WRONGTYPE Operation
/// against ..." becomes "-WRONGTYPE", a blob error "!…" keeps its type with the shortened text. Everything
/// else is copied as is.
/// </summary>
internal static class RespNormalizer
{
    public static bool TryNormalizeErrors(ReadOnlySpan<byte> reply, IBufferWriter<byte> output)
    {
        if (reply.IsEmpty)
        {
            return false;
        }

        switch (reply[0])
        {
            case (byte)'-':
            case (byte)'!':
                break;
            case (byte)'*':
            case (byte)'%':
            case (byte)'~':
            case (byte)'>':
            case (byte)'|':
                // Fast path: no '-' or '!' byte anywhere means no error anywhere.
                if (reply.IndexOfAny((byte)'-', (byte)'!') < 0)
                {
                    return false;
                }

                break;
            default:
                return false;
        }

        // First pass only looks; the second writes, so a malformed reply never leaves partial output.
        if (!Walk(reply, null))
        {
            return false;
        }

        Walk(reply, output);
        return true;
    }

    /// <summary>Walks one reply; returns true when some error gets shorter. Writes the normalized form when <paramref name="output"/> is set.</summary>
    private static bool Walk(ReadOnlySpan<byte> reply, IBufferWriter<byte>? output)
    {
        var pos = 0;
        long pending = 1;
        var copied = 0;
        var changed = false;
        while (pending > 0)
        {
            if (pos >= reply.Length)
            {
                return false;
            }

            var type = reply[pos];
            var lineLength = reply[pos..].IndexOf("\r\n"u8);
            if (lineLength < 1)
            {
                return false;
            }

            var line = reply.Slice(pos + 1, lineLength - 1);
            var next = pos + lineLength + 2;
            switch (type)
            {
                case (byte)'-':
                    {
                        var code = Code(line);
                        if (code.Length < line.Length)
                        {
                            changed = true;
                            if (output is not null)
                            {
                                output.Write(reply[copied..pos]);
                                output.Write("-"u8);
                                output.Write(code);
                                output.Write("\r\n"u8);
                                copied = next;
                            }
                        }

                        pending--;
                        pos = next;
                        break;
                    }

                case (byte)'+':
                case (byte)':':
                case (byte)'_':
                case (byte)',':
                case (byte)'#':
                case (byte)'(':
                    pending--;
                    pos = next;
                    break;

                case (byte)'$':
                case (byte)'!':
                case (byte)'=':
                    {
                        if (!RespEncoding.TryParseInteger(line, out var length))
                        {
                            return false;
                        }

                        if (length < 0)
                        {
                            pending--;
                            pos = next;
                            break;
                        }

                        if (length > reply.Length - next - 2)
                        {
                            return false;
                        }

                        var end = next + (int)length + 2;
                        if (type == (byte)'!')
                        {
                            var code = Code(reply.Slice(next, (int)length));
                            if (code.Length < length)
                            {
                                changed = true;
                                if (output is not null)
                                {
                                    output.Write(reply[copied..pos]);
                                    RespEncoding.WriteLine(output, (byte)'!', code.Length);
                                    output.Write(code);
                                    output.Write("\r\n"u8);
                                    copied = end;
                                }
                            }
                        }

                        pending--;
                        pos = end;
                        break;
                    }

                case (byte)'*':
                case (byte)'~':
                case (byte)'>':
                case (byte)'%':
                case (byte)'|':
                    {
                        if (!RespEncoding.TryParseInteger(line, out var count) || count > int.MaxValue || count < -1)
                        {
                            return false;
                        }

                        pending += count < 0 ? -1 : type switch
                        {
                            (byte)'%' => (2 * count) - 1,
                            (byte)'|' => 2 * count,
                            _ => count - 1,
                        };
                        pos = next;
                        break;
                    }

                default:
                    return false;
            }
        }

        output?.Write(reply[copied..]);
        return changed;
    }

    private static ReadOnlySpan<byte> Code(ReadOnlySpan<byte> message)
    {
        var space = message.IndexOf((byte)' ');
        return space < 0 ? message : message[..space];
    }
}
