using Resh.SampleKv.Engine;

namespace Resh.SampleKv.VariantA;

/// <summary>
/// Variant A: walks pattern and text together and recurses at every '*' for each later start in the
/// text. Once the remainder after a '*' has failed from every start, no shorter match for an earlier
/// '*' can succeed either, so the whole match gives up (this bounds the work on patterns like "*a*a*a*b").
/// </summary>
internal sealed class RecursiveGlob : IGlobMatcher
{
    public bool IsMatch(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text)
    {
        bool giveUp = false;
        return Match(pattern, text, ref giveUp);
    }

    // Reading one past the end sees the terminating NUL Redis' strings carry.
    private static byte At(ReadOnlySpan<byte> span, int index) => index < span.Length ? span[index] : (byte)0;

    private static bool Match(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text, ref bool giveUp)
    {
        int p = 0;
        int t = 0;
        while (p < pattern.Length && t < text.Length)
        {
            byte token = pattern[p];
            if (token == (byte)'*')
            {
                while (p + 1 < pattern.Length && pattern[p + 1] == (byte)'*')
                {
                    p++;
                }

                if (p == pattern.Length - 1)
                {
                    return true;
                }

                for (; t < text.Length; t++)
                {
                    if (Match(pattern[(p + 1)..], text[t..], ref giveUp))
                    {
                        return true;
                    }

                    if (giveUp)
                    {
                        return false;
                    }
                }

                giveUp = true;
                return false;
            }

            if (token == (byte)'[')
            {
                if (!MatchClass(pattern, ref p, text[t]))
                {
                    return false;
                }
            }
            else if (token != (byte)'?')
            {
                if (token == (byte)'\\' && pattern.Length - p >= 2)
                {
                    p++;
                }

                if (pattern[p] != text[t])
                {
                    return false;
                }
            }

            p++;
            t++;
            if (t == text.Length)
            {
                while (At(pattern, p) == (byte)'*')
                {
                    p++;
                }

                break;
            }
        }

        return p == pattern.Length && t == text.Length;
    }

    // On entry p is at '['; on exit it is at the class' last byte (its ']', or the pattern's last byte).
    private static bool MatchClass(ReadOnlySpan<byte> pattern, ref int p, byte c)
    {
        p++;
        bool negate = At(pattern, p) == (byte)'^';
        if (negate)
        {
            p++;
        }

        bool hit = false;
        while (true)
        {
            int left = pattern.Length - p;
            byte b = At(pattern, p);
            if (b == (byte)'\\' && left >= 2)
            {
                p++;
                if (pattern[p] == c)
                {
                    hit = true;
                }
            }
            else if (b == (byte)']')
            {
                break;
            }
            else if (left == 0)
            {
                p--;
                break;
            }
            else if (left >= 3 && pattern[p + 1] == (byte)'-')
            {
                // Redis compares plain (signed on x86) chars here.
                int low = (sbyte)pattern[p];
                int high = (sbyte)pattern[p + 2];
                if (low > high)
                {
                    (low, high) = (high, low);
                }

                int value = (sbyte)c;
                if (value >= low && value <= high)
                {
                    hit = true;
                }

                p += 2;
            }
            else if (b == c)
            {
                hit = true;
            }

            p++;
        }

        return hit != negate;
    }
}
