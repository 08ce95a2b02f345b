using System.Text;

namespace Resh.Protocols;

/// <summary>Small text helpers shared by the codecs.</summary>
internal static class ProtocolText
{
    /// <summary>UTF-8 bytes of <paramref name="message"/> with CR and LF replaced by spaces, so it fits on one protocol line.</summary>
    public static byte[] OneLine(string prefix, string message, string suffix)
    {
        var builder = new StringBuilder(prefix.Length + message.Length + suffix.Length);
        builder.Append(prefix);
        foreach (var c in message)
        {
            builder.Append(c is '\r' or '\n' ? ' ' : c);
        }

        builder.Append(suffix);
        return Encoding.UTF8.GetBytes(builder.ToString());
    }

    /// <summary>
    /// Shows binary data as text: printable ASCII as is, backslash and single quote escaped,
    /// everything else as \xHH (the way redis-cli quotes keys).
    /// </summary>
    public static string Escape(ReadOnlySpan<byte> bytes)
    {
        var builder = new StringBuilder(bytes.Length + 8);
        foreach (var b in bytes)
        {
            switch (b)
            {
                case (byte)'\\':
                    builder.Append("\\\\");
                    break;
                case (byte)'\'':
                    builder.Append("\\'");
                    break;
                case (byte)'\n':
                    builder.Append("\\n");
                    break;
                case (byte)'\r':
                    builder.Append("\\r");
                    break;
                case (byte)'\t':
                    builder.Append("\\t");
                    break;
                case >= 0x20 and < 0x7f:
                    builder.Append((char)b);
                    break;
                default:
                    builder.Append("\\x").Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
                    break;
            }
        }

        return builder.ToString();
    }
}
