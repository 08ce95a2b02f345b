namespace Resh.SampleKv.Engine;

/// <summary>
/// Redis' glob matching (<c>stringmatchlen</c>, case-sensitive) as used by KEYS: <c>*</c>, <c>?</c>,
/// <c>[abc]</c>, <c>[^abc]</c>, <c>[a-z]</c> (bounds may be reversed; bytes compare as signed chars like
/// Redis on x86), and <c>\x</c> escapes, including Redis' handling of unterminated classes and a
/// trailing backslash. An empty text matches only an empty pattern. Each variant has its own matcher.
/// </summary>
internal interface IGlobMatcher
{
    /// <summary>Whether <paramref name="text"/> matches <paramref name="pattern"/>.</summary>
    bool IsMatch(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text);
}
