using System.Globalization;
using System.Text;
using Resh.SampleKv.Engine;
using Resh.SampleKv.VariantA;
using Resh.SampleKv.VariantB;

namespace Resh.Tests.SampleKv;

/// <summary>The variant-specific pieces checked against each other and against Redis' rules.</summary>
public sealed class SampleKvCodecTests
{
    private static readonly IIntegerCodec[] Codecs = [new DigitIntegerCodec(), new RoundTripIntegerCodec()];
    private static readonly IGlobMatcher[] Globs = [new RecursiveGlob(), new BacktrackingGlob()];

    [Theory]
    [InlineData("0", 0L)]
    [InlineData("7", 7L)]
    [InlineData("-7", -7L)]
    [InlineData("9223372036854775807", long.MaxValue)]
    [InlineData("-9223372036854775808", long.MinValue)]
    public void Integers_AcceptTheCanonicalForm(string text, long value)
    {
        foreach (IIntegerCodec codec in Codecs)
        {
            Assert.True(codec.TryParse(Encoding.Latin1.GetBytes(text), out long parsed), $"{codec.GetType().Name} rejected '{text}'");
            Assert.Equal(value, parsed);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("-")]
    [InlineData("-0")]
    [InlineData("00")]
    [InlineData("007")]
    [InlineData("+1")]
    [InlineData(" 1")]
    [InlineData("1 ")]
    [InlineData("1\0")]
    [InlineData("1.0")]
    [InlineData("1e3")]
    [InlineData("0x10")]
    [InlineData("9223372036854775808")]
    [InlineData("-9223372036854775809")]
    [InlineData("18446744073709551616")]
    [InlineData("99999999999999999999")]
    [InlineData("000000000000000000001")]
    [InlineData("\u00b2")]
    public void Integers_RejectEverythingElse(string text)
    {
        foreach (IIntegerCodec codec in Codecs)
        {
            Assert.False(codec.TryParse(Encoding.Latin1.GetBytes(text), out _), $"{codec.GetType().Name} accepted '{text}'");
        }
    }

    [Fact]
    public void Integers_AgreeOnRandomText_AndFormatCanonically()
    {
        var random = new Random(11);
        const string alphabet = "-+0123456789 x\0";
        Span<byte> a = stackalloc byte[IIntegerCodec.MaxLength];
        Span<byte> b = stackalloc byte[IIntegerCodec.MaxLength];
        for (int i = 0; i < 50_000; i++)
        {
            byte[] text = [.. Enumerable.Range(0, random.Next(0, 23)).Select(_ => (byte)alphabet[random.Next(alphabet.Length)])];
            bool okA = Codecs[0].TryParse(text, out long valueA);
            bool okB = Codecs[1].TryParse(text, out long valueB);
            Assert.True(okA == okB && valueA == valueB, $"'{Encoding.Latin1.GetString(text)}': {okA}/{valueA} vs {okB}/{valueB}");

            long value = random.Next(4) switch
            {
                0 => random.NextInt64(),
                1 => -random.NextInt64(),
                2 => random.Next(-1000, 1000),
                _ => random.Next(2) == 0 ? long.MinValue + random.Next(10) : long.MaxValue - random.Next(10),
            };
            string expected = value.ToString(CultureInfo.InvariantCulture);
            int lengthA = Codecs[0].Format(value, a);
            int lengthB = Codecs[1].Format(value, b);
            Assert.Equal(expected, Encoding.ASCII.GetString(a[..lengthA]));
            Assert.Equal(expected, Encoding.ASCII.GetString(b[..lengthB]));
            Assert.True(Codecs[0].TryParse(a[..lengthA], out long back) && back == value);
            Assert.True(Codecs[1].TryParse(b[..lengthB], out back) && back == value);
        }
    }

    [Theory]
    [InlineData("*", "", false)]
    [InlineData("", "", true)]
    [InlineData("*", "abc", true)]
    [InlineData("a*", "a", true)]
    [InlineData("*a*", "a", true)]
    [InlineData("a?c", "abc", true)]
    [InlineData("a?c", "ac", false)]
    [InlineData("h[ae]llo", "hello", true)]
    [InlineData("h[^ae]llo", "hello", false)]
    [InlineData("h[a-e]llo", "hdllo", true)]
    [InlineData("h[e-a]llo", "hdllo", true)]
    [InlineData("a\\*c", "a*c", true)]
    [InlineData("a\\*c", "abc", false)]
    [InlineData("a\\", "a\\", true)]
    [InlineData("[", "x", false)]
    [InlineData("[^", "x", true)]
    [InlineData("[abc", "c", true)]
    [InlineData("[a-]", "b", false)]
    [InlineData("[a-]", "^", true)]
    [InlineData("[]]", "]", false)]
    [InlineData("[\\]]", "]", true)]
    [InlineData("[\u0080-\u00ff]", "\u00c0", true)]
    [InlineData("[a-\u00ff]", "b", false)]
    [InlineData("[a-\u00ff]", "\u00ff", true)]
    [InlineData("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", false)]
    public void Globs_FollowRedisRules(string pattern, string text, bool expected)
    {
        foreach (IGlobMatcher glob in Globs)
        {
            Assert.True(expected == glob.IsMatch(Encoding.Latin1.GetBytes(pattern), Encoding.Latin1.GetBytes(text)),
                $"{glob.GetType().Name}: '{pattern}' vs '{text}' should be {expected}");
        }
    }

    [Fact]
    public void Globs_AgreeOnRandomPatterns()
    {
        var random = new Random(5);
        const string patternAlphabet = "ab*?[]^-\\\u00ff\u0080";
        const string textAlphabet = "ab*?[]^-\\\u00ff\u0080c";
        for (int i = 0; i < 100_000; i++)
        {
            byte[] pattern = Encoding.Latin1.GetBytes([.. Enumerable.Range(0, random.Next(0, 9)).Select(_ => patternAlphabet[random.Next(patternAlphabet.Length)])]);
            byte[] text = Encoding.Latin1.GetBytes([.. Enumerable.Range(0, random.Next(0, 7)).Select(_ => textAlphabet[random.Next(textAlphabet.Length)])]);
            bool a = Globs[0].IsMatch(pattern, text);
            bool b = Globs[1].IsMatch(pattern, text);
            Assert.True(a == b, $"'{Encoding.Latin1.GetString(pattern)}' vs '{Encoding.Latin1.GetString(text)}': recursive {a}, backtracking {b}");
        }
    }
}
