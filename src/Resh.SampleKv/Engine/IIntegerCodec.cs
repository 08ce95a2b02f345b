namespace Resh.SampleKv.Engine;

/// <summary>
/// Signed 64-bit decimal integers as Redis reads and writes them. Each variant has its own,
/// independently written implementation.
/// </summary>
internal interface IIntegerCodec
{
    /// <summary>The longest text <see cref="Format"/> produces ("-9223372036854775808").</summary>
    const int MaxLength = 20;

    /// <summary>
    /// Parses the whole of <paramref name="text"/> with the rules of Redis' <c>string2ll</c>: only the
    /// canonical form is accepted, i.e. an optional '-', then "0" alone or digits without a leading zero,
    /// no '+', no blanks, no "-0", and the value must fit in a <see cref="long"/>.
    /// </summary>
    bool TryParse(ReadOnlySpan<byte> text, out long value);

    /// <summary>Writes the canonical decimal form of <paramref name="value"/>; <paramref name="destination"/>
    /// must hold at least <see cref="MaxLength"/> bytes. Returns the number of bytes written.</summary>
    int Format(long value, Span<byte> destination);
}
