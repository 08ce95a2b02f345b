using System.Globalization;
using System.Text;
using Resh.SampleKv.Engine;

namespace Resh.SampleKv.VariantB;

/// <summary>
/// Variant B: lets the runtime parse the number, then accepts it only if printing the value back
/// gives exactly the input bytes, which is precisely the canonical form. Printing is done by hand.
/// </summary>
internal sealed class RoundTripIntegerCodec : IIntegerCodec
{
    public bool TryParse(ReadOnlySpan<byte> text, out long value)
    {
        value = 0;
        if (text.IsEmpty || text.Length > IIntegerCodec.MaxLength)
        {
            return false;
        }

        string candidate = Encoding.Latin1.GetString(text);
        if (!long.TryParse(candidate, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long parsed))
        {
            return false;
        }

        Span<byte> canonical = stackalloc byte[IIntegerCodec.MaxLength];
        int length = Format(parsed, canonical);
        if (!text.SequenceEqual(canonical[..length]))
        {
            return false;
        }

        value = parsed;
        return true;
    }

    public int Format(long value, Span<byte> destination)
    {
        // Work on the non-positive magnitude so long.MinValue needs no special case.
        Span<byte> scratch = stackalloc byte[IIntegerCodec.MaxLength];
        int start = scratch.Length;
        long rest = value < 0 ? value : -value;
        do
        {
            long quotient = rest / 10;
            scratch[--start] = (byte)('0' + (int)(quotient * 10 - rest));
            rest = quotient;
        }
        while (rest != 0);

        if (value < 0)
        {
            scratch[--start] = (byte)'-';
        }

        int length = scratch.Length - start;
        scratch[start..].CopyTo(destination);
        return length;
    }
}
