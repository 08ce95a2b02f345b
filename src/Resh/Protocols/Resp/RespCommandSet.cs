using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// The rejected-command set compiled for lookups straight from request bytes, without allocating.
/// Each entry carries its ready-made error reply.
/// </summary>
internal sealed class RespCommandSet
{
    private const int MaxNameLength = 64;

    private readonly Dictionary<string, byte[]> _replies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly HashSet<string> _parents = new(StringComparer.Ordinal);
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _parentLookup;

    public RespCommandSet(IEnumerable<string> names)
    {
        foreach (var raw in names)
        {
            if (!IsValidEntry(raw))
            {
                throw new ArgumentException($"invalid rejected command '{raw}'", nameof(names));
            }

            var name = raw.ToLowerInvariant();
            var display = name.Replace('|', ' ');
            _replies[name] = Encoding.ASCII.GetBytes($"-ERR resh: {display} is not supported under replication\r\n");
            var bar = name.IndexOf('|', StringComparison.Ordinal);
            if (bar > 0)
            {
                _parents.Add(name[..bar]);
            }
        }

        _lookup = _replies.GetAlternateLookup<ReadOnlySpan<char>>();
        _parentLookup = _parents.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>An entry is a command name, or "command|subcommand", of printable ASCII without spaces.</summary>
    public static bool IsValidEntry(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxNameLength)
        {
            return false;
        }

        var bars = 0;
        foreach (var c in name)
        {
            if (c == '|')
            {
                bars++;
            }
            else if (c <= ' ' || c >= 0x7f)
            {
                return false;
            }
        }

        return bars == 0 || (bars == 1 && name[0] != '|' && name[^1] != '|');
    }

    /// <summary>
    /// Looks up a command (and its first argument as subcommand, when <paramref name="argCount"/> &gt; 1).
    /// Returns the error reply for a rejected command.
    /// </summary>
    public bool TryReject(ReadOnlySpan<byte> name, ReadOnlySpan<byte> subcommand, int argCount, out byte[] reply)
    {
        reply = [];
        if (_replies.Count == 0 || name.Length > MaxNameLength)
        {
            return false;
        }

        Span<char> key = stackalloc char[(MaxNameLength * 2) + 1];
        if (!TryLower(name, key, out var length))
        {
            return false;
        }

        if (_lookup.TryGetValue(key[..length], out var found))
        {
            reply = found;
            return true;
        }

        if (argCount < 2 || _parents.Count == 0 || subcommand.Length > MaxNameLength || !_parentLookup.Contains(key[..length]))
        {
            return false;
        }

        key[length] = '|';
        if (!TryLower(subcommand, key[(length + 1)..], out var subLength))
        {
            return false;
        }

        if (_lookup.TryGetValue(key[..(length + 1 + subLength)], out found))
        {
            reply = found;
            return true;
        }

        return false;
    }

    private static bool TryLower(ReadOnlySpan<byte> bytes, Span<char> destination, out int length)
    {
        length = bytes.Length;
        for (var i = 0; i < bytes.Length; i++)
        {
            var b = bytes[i];
            if (b >= 0x80)
            {
                return false;
            }

            destination[i] = (char)(b is >= (byte)'A' and <= (byte)'Z' ? b | 0x20 : b);
        }

        return true;
    }
}
