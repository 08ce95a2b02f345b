using Resh.SampleKv.Engine;

namespace Resh.SampleKv.VariantB;

/// <summary>
/// Variant B: every pattern element other than '*' consumes exactly one byte, so a single remembered
/// star position is enough: on a mismatch, let the last star swallow one more byte and retry.
/// </summary>
internal sealed class BacktrackingGlob : IGlobMatcher
{
    public bool IsMatch(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text)
    {
        // Redis never enters its matching loop for an empty text: only an empty pattern matches it.
        if (text.IsEmpty)
        {
            return pattern.IsEmpty;
        }

        int p = 0;
        int t = 0;
        int resumePattern = -1;
        int resumeText = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && pattern[p] == (byte)'*')
            {
                p = SkipStars(pattern, p);
                if (p == pattern.Length)
                {
                    return true;
                }

                resumePattern = p;
                resumeText = t;
                continue;
            }

            if (p < pattern.Length && Step(pattern, ref p, text[t]))
            {
                t++;
                continue;
            }

            if (resumePattern < 0)
            {
                return false;
            }

            p = resumePattern;
            t = ++resumeText;
        }

        return SkipStars(pattern, p) == pattern.Length;
    }

    private static int SkipStars(ReadOnlySpan<byte> pattern, int p)
    {
        while (p < pattern.Length && pattern[p] == (byte)'*')
        {
            p++;
        }

        return p;
    }

    // Matches the element starting at p against one byte; on success p moves past the element.
    private static bool Step(ReadOnlySpan<byte> pattern, ref int p, byte c)
    {
        byte head = pattern[p];
        switch (head)
        {
            case (byte)'?':
                p++;
                return true;
            case (byte)'[':
                return StepClass(pattern, ref p, c);
            case (byte)'\\' when pattern.Length - p >= 2:
                if (pattern[p + 1] != c)
                {
                    return false;
                }

                p += 2;
                return true;
            default:
                if (head != c)
                {
                    return false;
                }

                p++;
                return true;
        }
    }

    private static bool StepClass(ReadOnlySpan<byte> pattern, ref int p, byte c)
    {
        int q = p + 1;
        bool negated = q < pattern.Length && pattern[q] == (byte)'^';
        if (negated)
        {
            q++;
        }

        bool found = false;
        sbyte signed = unchecked((sbyte)c);
        while (q < pattern.Length)
        {
            byte b = pattern[q];
            int left = pattern.Length - q;
            if (b == (byte)'\\' && left >= 2)
            {
                found |= pattern[q + 1] == c;
                q += 2;
            }
            else if (b == (byte)']')
            {
                q++;
                break;
            }
            else if (left >= 3 && pattern[q + 1] == (byte)'-')
            {
                sbyte from = unchecked((sbyte)b);
                sbyte to = unchecked((sbyte)pattern[q + 2]);
                found |= from <= to ? signed >= from && signed <= to : signed >= to && signed <= from;
                q += 3;
            }
            else
            {
                found |= b == c;
                q++;
            }
        }

        if (found == negated)
        {
            return false;
        }

        p = q;
        return true;
    }
}
