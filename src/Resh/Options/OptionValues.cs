using System.Globalization;
using System.Net;

namespace Resh.Options;

/// <summary>Reads one option value from its text; on failure, <paramref name="problem"/> says what is wrong and how to write it.</summary>
public delegate bool OptionParser<TValue>(string text, OptionContext context, out TValue value, out string problem);

/// <summary>The kinds of option values, each with its one error text.</summary>
public static class OptionValues
{
    public static OptionParser<string> Text { get; } = (string text, OptionContext _, out string value, out string problem) =>
    {
        (value, problem) = (text, "");
        return true;
    };

    /// <summary>true/yes or false/no.</summary>
    public static OptionParser<bool> Flag { get; } = (string text, OptionContext _, out bool value, out string problem) =>
    {
        (value, problem) = (text is "true" or "yes", $"'{text}' is not true or false");
        return text is "true" or "yes" or "false" or "no";
    };

    /// <summary>HOST:PORT with an IP address, or localhost:PORT.</summary>
    public static OptionParser<IPEndPoint> Endpoint { get; } = (string text, OptionContext _, out IPEndPoint value, out string problem) =>
    {
        problem = $"'{text}' is not an address; write HOST:PORT with an IP address, e.g. 127.0.0.1:6380";
        if (IPEndPoint.TryParse(text, out var ep) && ep.Port is > 0 and <= 65535 && text.Contains(':', StringComparison.Ordinal))
        {
            value = ep;
            return true;
        }

        if (text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase) && int.TryParse(text[10..], CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535)
        {
            value = new IPEndPoint(IPAddress.Loopback, port);
            return true;
        }

        value = null!;
        return false;
    };

    /// <summary>A path; a relative one is relative to the configuration file's directory.</summary>
    public static OptionParser<string> Path { get; } = (string text, OptionContext context, out string value, out string problem) =>
    {
        (value, problem) = (System.IO.Path.GetFullPath(System.IO.Path.Combine(context.BaseDirectory, text)), "");
        return true;
    };

    public static OptionParser<long> Integer(long min, long max) => (string text, OptionContext _, out long value, out string problem) =>
    {
        problem = $"'{text}' is not a whole number from {min} to {max}";
        return long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out value) && value >= min && value <= max;
    };

    /// <summary>500ms, 5s, 2m, 1h or plain seconds; positive unless <paramref name="allowZero"/>.</summary>
    public static OptionParser<TimeSpan> Duration(bool allowZero = false) => (string text, OptionContext _, out TimeSpan value, out string problem) =>
    {
        problem = $"'{text}' is not a {(allowZero ? "" : "positive ")}duration; write e.g. 500ms, 5s, 2m";
        return TryParseDuration(text, out value) && (value > TimeSpan.Zero || (allowZero && value == TimeSpan.Zero));
    };

    /// <summary>A positive size in bytes: 65536, 64KiB, 512MiB, 1GB.</summary>
    public static OptionParser<long> Size { get; } = (string text, OptionContext _, out long value, out string problem) =>
    {
        problem = $"'{text}' is not a positive size; write e.g. 65536, 64KiB, 512MiB";
        return TryParseSize(text, out value) && value > 0;
    };

    /// <summary>A size, or 0 where 0 means "no limit".</summary>
    public static OptionParser<long> SizeOrZero { get; } = (string text, OptionContext _, out long value, out string problem) =>
    {
        problem = $"'{text}' is not a size; write e.g. 0 (no limit), 65536, 64KiB, 512MiB";
        return TryParseSize(text, out value) && value >= 0;
    };

    /// <summary>One of a fixed set of words; <paramref name="words"/> says them with their meaning.</summary>
    public static OptionParser<T> Choice<T>(string words, params (string Word, T Value)[] choices) => (string text, OptionContext _, out T value, out string problem) =>
    {
        problem = $"'{text}' is not known; use {words}";
        foreach (var (word, choice) in choices)
        {
            if (text == word)
            {
                value = choice;
                return true;
            }
        }

        value = default!;
        return false;
    };

    /// <summary>An interval written as a number of log entries (10000) or a duration (5s).</summary>
    public static OptionParser<(long? Entries, TimeSpan? Every)> EntriesOrDuration { get; } = (string text, OptionContext _, out (long? Entries, TimeSpan? Every) value, out string problem) =>
    {
        problem = $"'{text}' is neither a number of log entries (e.g. 10000) nor a duration (e.g. 5s)";
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var entries) && entries > 0)
        {
            value = (entries, null);
            return true;
        }

        if (!text.All(char.IsAsciiDigit) && TryParseDuration(text, out var every) && every > TimeSpan.Zero)
        {
            value = (null, every);
            return true;
        }

        value = default;
        return false;
    };

    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = default;
        var t = text.Trim();
        (string Suffix, double Scale)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];
        foreach (var (suffix, scale) in units)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal) && double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0)
            {
                value = TimeSpan.FromSeconds(n * scale);
                return true;
            }
        }

        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0)
        {
            value = TimeSpan.FromSeconds(seconds);
            return true;
        }

        return false;
    }

    public static bool TryParseSize(string text, out long value)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = 0;
        var t = text.Trim();
        (string Suffix, long Scale)[] units = [("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)];
        foreach (var (suffix, scale) in units)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal) && long.TryParse(t[..^suffix.Length].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
            {
                value = n * scale;
                return n >= 0 && n <= long.MaxValue / scale;
            }
        }

        return long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out value);
    }
}
