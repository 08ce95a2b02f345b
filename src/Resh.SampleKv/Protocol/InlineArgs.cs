namespace Resh.SampleKv.Protocol;

/// <summary>
/// Splits an inline request line the way Redis does (<c>sdssplitargs</c>): blank-separated words,
/// "double quotes" with \n \r \t \b \a \xHH and \c escapes, 'single quotes' with \' only. A closing
/// quote must be followed by a blank or the end of the line. The line ends at its first NUL.
/// </summary>
internal static class InlineArgs
{
    /// <summary>The words of the line, or null when its quotes are unbalanced.</summary>
    public static byte[][]? Split(ReadOnlySpan<byte> line)
    {
        int nul = line.IndexOf((byte)0);
        if (nul >= 0)
        {
            line = line[..nul];
        }

        var words = new List<byte[]>();
        var current = new List<byte>();
        int i = 0;
        while (true)
        {
            while (i < line.Length && IsSpace(line[i]))
            {
                i++;
            }

            if (i == line.Length)
            {
                return [.. words];
            }

            bool inDouble = false;
            bool inSingle = false;
            bool done = false;
            while (!done)
            {
                byte c = At(line, i);
                if (inDouble)
                {
                    if (c == (byte)'\\' && At(line, i + 1) == (byte)'x' && IsHex(At(line, i + 2)) && IsHex(At(line, i + 3)))
                    {
                        current.Add((byte)((HexValue(At(line, i + 2)) << 4) | HexValue(At(line, i + 3))));
                        i += 3;
                    }
                    else if (c == (byte)'\\' && i + 1 < line.Length)
                    {
                        i++;
                        current.Add(line[i] switch
                        {
                            (byte)'n' => (byte)'\n',
                            (byte)'r' => (byte)'\r',
                            (byte)'t' => (byte)'\t',
                            (byte)'b' => (byte)'\b',
                            (byte)'a' => (byte)'\a',
                            byte other => other,
                        });
                    }
                    else if (c == (byte)'"')
                    {
                        if (i + 1 < line.Length && !IsSpace(line[i + 1]))
                        {
                            return null;
                        }

                        done = true;
                    }
                    else if (i >= line.Length)
                    {
                        return null;
                    }
                    else
                    {
                        current.Add(c);
                    }
                }
                else if (inSingle)
                {
                    if (c == (byte)'\\' && At(line, i + 1) == (byte)'\'')
                    {
                        i++;
                        current.Add((byte)'\'');
                    }
                    else if (c == (byte)'\'')
                    {
                        if (i + 1 < line.Length && !IsSpace(line[i + 1]))
                        {
                            return null;
                        }

                        done = true;
                    }
                    else if (i >= line.Length)
                    {
                        return null;
                    }
                    else
                    {
                        current.Add(c);
                    }
                }
                else if (i >= line.Length || c is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')
                {
                    done = true;
                }
                else if (c == (byte)'"')
                {
                    inDouble = true;
                }
                else if (c == (byte)'\'')
                {
                    inSingle = true;
                }
                else
                {
                    current.Add(c);
                }

                if (i < line.Length)
                {
                    i++;
                }
            }

            words.Add([.. current]);
            current.Clear();
        }
    }

    private static byte At(ReadOnlySpan<byte> line, int index) => index < line.Length ? line[index] : (byte)0;

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\v' or (byte)'\f' or (byte)'\r';

    private static bool IsHex(byte b) => b is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F';

    private static int HexValue(byte b) => b switch
    {
        <= (byte)'9' => b - '0',
        <= (byte)'F' => b - 'A' + 10,
        _ => b - 'a' + 10,
    };
}
