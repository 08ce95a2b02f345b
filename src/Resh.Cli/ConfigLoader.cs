using Resh.Hosting;
using Resh.Options;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Resh.Cli;

/// <summary>A configuration problem: where it is and what fixes it.</summary>
public sealed record ConfigError(string File, int Line, string Message)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}: {Message}" : $"{File}: {Message}";
}

public sealed class ConfigException(IReadOnlyList<ConfigError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<ConfigError> Errors { get; } = errors;
}

/// <summary>
/// Reads the YAML configuration into <see cref="ReshOptions"/>: the YAML becomes <see cref="ConfigNode"/>s, bound
/// to the keys every options type declares (<see cref="ReshOptions.Keys"/>). Every problem is reported with its
/// line, the key, and what would fix it; unknown keys are errors (with the nearest known key suggested). Relative
/// paths are relative to the configuration file's directory.
/// </summary>
public static class ConfigLoader
{
    public static ReshOptions LoadFile(string path) => LoadFileWithValues(path).Options;

    /// <summary>
    /// Reads the file as <see cref="LoadFile"/> does, and also every key's value as written, by full path
    /// ("service.max-clients"; a list is one value): what a reload compares to find the keys that changed.
    /// </summary>
    public static (ReshOptions Options, IReadOnlyDictionary<string, string> Values) LoadFileWithValues(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigException([new ConfigError(path, 0, "file not found")]);
        }

        var full = Path.GetFullPath(path);
        var (options, root) = Parse(File.ReadAllText(full), path, Path.GetDirectoryName(full)!, Path.GetFileNameWithoutExtension(full));
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        Flatten(root, "", values);
        return (options, values);
    }

    /// <summary>The keys whose values differ between two readings of a configuration (added or removed ones too).</summary>
    public static IReadOnlyList<string> Changed(IReadOnlyDictionary<string, string> before, IReadOnlyDictionary<string, string> after) =>
        [.. before.Keys.Union(after.Keys).Where(k => !before.TryGetValue(k, out var a) || !after.TryGetValue(k, out var b) || a != b).Order(StringComparer.Ordinal)];

    private static void Flatten(ConfigNode node, string path, Dictionary<string, string> values)
    {
        if (node.Entries is { } entries)
        {
            foreach (var (key, value) in entries)
            {
                Flatten(value, path.Length == 0 ? key.Text ?? "" : $"{path}.{key.Text}", values);
            }
        }
        else
        {
            values[path] = Text(node);
        }

        static string Text(ConfigNode node) =>
            node.Items is { } items ? "[" + string.Join(", ", items.Select(Text)) + "]"
            : node.Entries is { } entries ? "{" + string.Join(", ", entries.Select(e => $"{e.Key.Text}: {Text(e.Value)}")) + "}"
            : node.Text ?? "";
    }

    /// <summary>Parses YAML text; <paramref name="name"/> names the default state directory.</summary>
    public static ReshOptions Load(string yaml, string file, string baseDirectory, string name = "resh") =>
        Parse(yaml, file, baseDirectory, name).Options;

    /// <summary>The options of the YAML text, and its root as read.</summary>
    private static (ReshOptions Options, ConfigNode Root) Parse(string yaml, string file, string baseDirectory, string name)
    {
        var errors = new List<ConfigError>();
        var root = Read(yaml, file, errors);
        if (root is null)
        {
            throw new ConfigException(errors);
        }

        var read = root;

        var options = new ReshOptions();
        options.Group.StateDirectory = Path.Combine(baseDirectory, ".resh-state", name);

        // checkpoint: off turns the default checkpoints off; the section's own keys are bound as any other.
        var checkpoint = root.Entries!.FirstOrDefault(e => e.Key.Text == "checkpoint").Value;
        var off = checkpoint is { IsScalar: true, Text: "off" or "none" or "false" };
        if (off)
        {
            root = ConfigNode.Mapping(root.Line, [.. root.Entries!.Where(e => e.Key.Text != "checkpoint")]);
        }

        var binder = new OptionBinder(new OptionContext(baseDirectory));
        binder.Bind(options, root, ReshOptions.Keys);
        errors.AddRange(binder.Problems.Select(p => new ConfigError(file, p.Line, p.Message)));
        if (checkpoint is null)
        {
            // A service known to support checkpoints takes them by default, so the log in memory stays bounded.
            options.Group.Checkpoint = options.DefaultCheckpoint();
        }
        if (errors.Count == 0)
        {
            // Semantic checks of the options themselves, reported at the top-level key they name.
            foreach (var message in options.Validate())
            {
                var key = message.Split(':', 2)[0].Split('.')[0].Split('[')[0];
                var node = root.Entries!.FirstOrDefault(e => e.Key.Text == key).Value;
                errors.Add(new ConfigError(file, node?.Line ?? 0, message));
            }
        }

        return errors.Count == 0 ? (options, read) : throw new ConfigException(errors);
    }

    /// <summary>The document's root mapping, or null with the problem in <paramref name="errors"/>.</summary>
    private static ConfigNode? Read(string yaml, string file, List<ConfigError> errors)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            errors.Add(new ConfigError(file, e.Start.Line > 0 ? (int)e.Start.Line : 0, $"not valid YAML: {e.InnerException?.Message ?? e.Message}"));
            return null;
        }
        catch (InvalidOperationException e)
        {
            // The scanner reports some truncated documents (e.g. an unclosed [ at the end) this way.
            errors.Add(new ConfigError(file, 0, $"not valid YAML (unexpected end of the document; an unclosed bracket or quote?): {e.Message}"));
            return null;
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            errors.Add(new ConfigError(file, 1, "expected a mapping with at least service:, mode:, faults: and replicas:"));
            return null;
        }

        return Convert(root);
    }

    private static ConfigNode Convert(YamlNode node)
    {
        var line = (int)node.Start.Line;
        return node switch
        {
            YamlMappingNode map => ConfigNode.Mapping(line, [.. map.Children.Select(c => (Convert(c.Key), Convert(c.Value)))]),
            YamlSequenceNode list => ConfigNode.List(line, [.. list.Children.Select(Convert)]),
            YamlScalarNode scalar => ConfigNode.Scalar(line, scalar.Value),
            _ => ConfigNode.Scalar(line, null),
        };
    }
}
