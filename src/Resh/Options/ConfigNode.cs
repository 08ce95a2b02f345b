namespace Resh.Options;

/// <summary>
/// One node of a configuration document, whatever its format: a text value, a list, or a mapping of keys. The CLI
/// turns its YAML into these; <see cref="OptionBinder"/> binds them to options that declare their keys.
/// </summary>
public sealed class ConfigNode
{
    private ConfigNode(int line, string? text, IReadOnlyList<ConfigNode>? items, IReadOnlyList<(ConfigNode Key, ConfigNode Value)>? entries)
    {
        Line = line;
        Text = text;
        Items = items;
        Entries = entries;
    }

    /// <summary>1-based line where the node starts; 0 when unknown.</summary>
    public int Line { get; }

    /// <summary>The value of a scalar node, null otherwise (and for an empty scalar).</summary>
    public string? Text { get; }

    /// <summary>The items of a list node, null otherwise.</summary>
    public IReadOnlyList<ConfigNode>? Items { get; }

    /// <summary>The key/value pairs of a mapping node in document order, null otherwise.</summary>
    public IReadOnlyList<(ConfigNode Key, ConfigNode Value)>? Entries { get; }

    public bool IsScalar => Items is null && Entries is null;

    public static ConfigNode Scalar(int line, string? text) => new(line, text, null, null);

    public static ConfigNode List(int line, IReadOnlyList<ConfigNode> items) => new(line, null, items, null);

    public static ConfigNode Mapping(int line, IReadOnlyList<(ConfigNode Key, ConfigNode Value)> entries) => new(line, null, null, entries);
}

/// <summary>A configuration problem at a line (0: the file as a whole), the message naming the key.</summary>
public readonly record struct ConfigProblem(int Line, string Message);

/// <summary>What option values may depend on beside their text: the directory relative paths start from.</summary>
public sealed record OptionContext(string BaseDirectory);
