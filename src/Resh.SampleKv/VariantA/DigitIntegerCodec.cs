using System.Globalization;
using Resh.SampleKv.Engine;

namespace Resh.SampleKv.VariantA;

/// <summary>Variant A: accumulates digits into an unsigned magnitude with an overflow check at every step.</summary>
internal sealed class DigitIntegerCodec : IIntegerCodec
{
    private const ulong NegativeLimit = (ulong)long.MaxValue + 1;

    public bool TryParse(ReadOnlySpan<byte> text, out long value)
    {
        value = 0;
        if (text.Length == 0 || text.Length > IIntegerCodec.MaxLength)
        {
            return false;
        }

        if (text.Length == 1 && text[0] == (byte)'0')
        {
            return true;
        }

        int index = 0;
        bool negative = text[0] == (byte)'-';
        if (negative)
        {
            index = 1;
            if (text.Length == 1)
            {
                return false;
            }
        }

        // The first digit must be 1-9: "0" alone was handled above, so a leading zero is not canonical.
        if (text[index] < (byte)'1' || text[index] > (byte)'9')
        {
            return false;
        }

        ulong magnitude = (ulong)(text[index] - (byte)'0');
        for (index++; index < text.Length; index++)
        {
            uint digit = (uint)(text[index] - (byte)'0');
            if (digit > 9 || magnitude > ulong.MaxValue / 10)
            {
                return false;
            }

            magnitude *= 10;
            if (magnitude > ulong.MaxValue - digit)
            {
                return false;
            }

            magnitude += digit;
        }

        if (negative)
        {
            if (magnitude > NegativeLimit)
            {
                return false;
            }

            value = unchecked(-(long)magnitude);
            return true;
        }

        if (magnitude > long.MaxValue)
        {
            return false;
        }

        value = (long)magnitude;
        return true;
    }

    public int Format(long value, Span<byte> destination)
    {
        if (!value.TryFormat(destination, out int written, default, CultureInfo.InvariantCulture))
        {
            throw new ArgumentException("The destination is too small for a 64-bit integer.", nameof(destination));
        }

        return written;
    }
}
