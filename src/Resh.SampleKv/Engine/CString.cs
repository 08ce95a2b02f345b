namespace Resh.SampleKv.Engine;

/// <summary>
/// Redis reads option names and formats some error texts through C string functions, which stop at the
/// first NUL byte; these helpers reproduce that so replies match byte for byte.
/// </summary>
internal static class CString
{
    /// <summary>The bytes before the first NUL (all of them when there is none).</summary>
    public static ReadOnlySpan<byte> Of(ReadOnlySpan<byte> bytes)
    {
        int nul = bytes.IndexOf((byte)0);
        return nul < 0 ? bytes : bytes[..nul];
    }

    /// <summary><c>strcasecmp(arg, option) == 0</c>: the C string of <paramref name="arg"/> equals the
    /// lowercase ASCII <paramref name="lowerOption"/>, ignoring ASCII case.</summary>
    public static bool IsOption(ReadOnlySpan<byte> arg, ReadOnlySpan<byte> lowerOption)
    {
        ReadOnlySpan<byte> text = Of(arg);
        if (text.Length != lowerOption.Length)
        {
            return false;
        }

        for (int i = 0; i < text.Length; i++)
        {
            byte b = text[i];
            if (b is >= (byte)'A' and <= (byte)'Z')
            {
                b += 'a' - 'A';
            }

            if (b != lowerOption[i])
            {
                return false;
            }
        }

        return true;
    }
}
