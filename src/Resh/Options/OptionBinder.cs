namespace Resh.Options;

/// <summary>
/// Binds configuration nodes to options that declare their keys (<see cref="OptionSchema{T}"/>). Every problem is
/// kept with its line and the full key ("service.limits.max-bulk-bytes: ..."); an unknown key gets the nearest
/// known one suggested; binding goes on after a problem, so one pass reports them all.
/// </summary>
public sealed class OptionBinder(OptionContext context)
{
    private readonly List<ConfigProblem> _problems = [];

    public OptionContext Context { get; } = context;

    public IReadOnlyList<ConfigProblem> Problems => _problems;

    /// <summary>Binds the keys of <paramref name="mapping"/> to <paramref name="target"/>; <paramref name="path"/> prefixes every key named in a problem.</summary>
    public void Bind<T>(T target, ConfigNode mapping, OptionSchema<T> schema, string path = "")
    {
        ArgumentNullException.ThrowIfNull(mapping);
        ArgumentNullException.ThrowIfNull(schema);
        if (mapping.Entries is not { } entries)
        {
            Problem(mapping, $"{path.TrimEnd('.')}: expected a mapping of keys");
            return;
        }

        var names = schema.Keys.Select(k => k.Name).ToArray();
        var given = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in entries)
        {
            var key = keyNode.Text ?? "";
            if (!names.Contains(key))
            {
                var hint = Nearest(key, names) is { } near ? $" (did you mean '{path}{near}'?)" : "";
                Problem(keyNode, $"{path}{key}: unknown key{hint}; known keys here: {string.Join(", ", names)}");
            }
            else if (!given.TryAdd(key, value))
            {
                Problem(keyNode, $"{path}{key}: given twice; keep one");
            }
        }

        foreach (var key in schema.Keys)
        {
            if (key.Required is { } example && !given.ContainsKey(key.Name))
            {
                Problem(mapping, $"{path}{key.Name}: missing; add e.g. '{example}'");
            }
        }

        foreach (var key in schema.Keys)
        {
            if (given.TryGetValue(key.Name, out var node))
            {
                key.Bind(target, node, this, path + key.Name);
            }
        }

        foreach (var rule in schema.Rules)
        {
            var present = given.TryGetValue(rule.Key, out var at);
            if (rule.Check(target, present) is { } problem)
            {
                Problem(at ?? (rule.AtKey is { } other && given.TryGetValue(other, out var near) ? near : mapping), problem);
            }
        }
    }

    public void Problem(ConfigNode node, string message)
    {
        ArgumentNullException.ThrowIfNull(node);
        _problems.Add(new ConfigProblem(node.Line, message));
    }

    /// <summary>The text of a scalar node; a problem naming <paramref name="key"/> otherwise.</summary>
    public string? Text(ConfigNode node, string key)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node.IsScalar)
        {
            return node.Text;
        }

        Problem(node, $"{key}: expected a single value");
        return null;
    }

    /// <summary>The entries of a mapping node; a problem naming <paramref name="key"/> otherwise.</summary>
    public IReadOnlyList<(ConfigNode Key, ConfigNode Value)>? Mapping(ConfigNode node, string key)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node.Entries is null)
        {
            Problem(node, $"{key}: expected a mapping of keys");
        }

        return node.Entries;
    }

    public bool TryParse<TValue>(ConfigNode node, string key, OptionParser<TValue> parse, out TValue value)
    {
        ArgumentNullException.ThrowIfNull(parse);
        value = default!;
        if (Text(node, key) is not { } text)
        {
            return false;
        }

        if (parse(text, Context, out value, out var problem))
        {
            return true;
        }

        Problem(node, $"{key}: {problem}");
        return false;
    }

    private static string? Nearest(string key, string[] known)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var k in known)
        {
            var d = Levenshtein(key, k);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = k;
            }
        }

        return bestDistance <= Math.Max(2, key.Length / 3) ? best : null;
    }

    private static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            prev[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            (prev, cur) = (cur, prev);
        }

        return prev[b.Length];
    }
}
