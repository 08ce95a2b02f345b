using Resh.Protocols.Resp;

namespace Resh.Protocols;

/// <summary>Builds a protocol codec by its configuration name.</summary>
public static class ProtocolFactory
{
    /// <summary>Names accepted by <see cref="Create"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["resp", "line", "length-prefixed"];

    /// <summary>
    /// The codec named <paramref name="name"/> (case-insensitive), built from its options (defaults when null).
    /// Options of the other codecs are ignored.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown name, or invalid options (the message names each key).</exception>
    public static IProtocol Create(string name, RespOptions? resp = null, LineOptions? line = null, LengthPrefixedOptions? lengthPrefixed = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.ToLowerInvariant() switch
        {
            "resp" => new RespProtocol(resp ?? new RespOptions()),
            "line" => new LineProtocol(line ?? new LineOptions()),
            "length-prefixed" => new LengthPrefixedProtocol(lengthPrefixed ?? new LengthPrefixedOptions()),
            _ => throw new ArgumentException($"service.protocol '{name}' is unknown: use one of {string.Join(", ", Names)}", nameof(name)),
        };
    }
}
