namespace Resh.Options;

/// <summary>
/// The keys an options type declares for itself: each key's name, help text, how its value is read (kind, range,
/// default left as the property's initial value) and where it goes. <see cref="OptionBinder"/> binds any
/// <see cref="ConfigNode"/> mapping to it, so a new setting is written once, beside its property.
/// </summary>
public sealed class OptionSchema<T>
{
    private readonly List<OptionKey<T>> _keys = [];
    private readonly List<OptionRule<T>> _rules = [];

    public IReadOnlyList<OptionKey<T>> Keys => _keys;

    internal IReadOnlyList<OptionRule<T>> Rules => _rules;

    /// <summary>Every key with its full path ("service.limits.max-bulk-bytes"), its help text and, when required, an example; sections before their keys.</summary>
    public IEnumerable<OptionKeyInfo> Describe(string path = "")
    {
        foreach (var key in _keys)
        {
            yield return new OptionKeyInfo(path + key.Name, key.Help, key.Required);
            foreach (var child in key.Children?.Invoke(path + key.Name + ".") ?? [])
            {
                yield return child;
            }
        }
    }

    /// <summary>A key with one value.</summary>
    /// <param name="required">When the key must be given: an example of it for the error.</param>
    public OptionSchema<T> Value<TValue>(string name, string help, OptionParser<TValue> parse, Action<T, TValue> set, string? required = null) =>
        Add(new(name, help, required, (target, node, binder, key) =>
        {
            if (binder.TryParse(node, key, parse, out var value))
            {
                set(target, value);
            }
        }));

    /// <summary>A key with a list of values (<paramref name="oneToo"/>: or a single one); <paramref name="example"/> shows a list.</summary>
    public OptionSchema<T> List<TValue>(string name, string help, OptionParser<TValue> parse, Action<T, List<TValue>> set, string example, bool oneToo = false, string? required = null) =>
        Add(new(name, help, required, (target, node, binder, key) =>
        {
            if (node.Items is null && !(oneToo && node.IsScalar))
            {
                binder.Problem(node, $"{key}: expected a list, e.g. {example}");
                return;
            }

            var values = new List<TValue>();
            foreach (var item in node.Items ?? [node])
            {
                if (binder.TryParse(item, key, parse, out var value))
                {
                    values.Add(value);
                }
            }

            set(target, values);
        }));

    /// <summary>A key whose value maps names to texts (environment variables, users).</summary>
    public OptionSchema<T> Map(string name, string help, Action<T, string, string> set) =>
        Add(new(name, help, null, (target, node, binder, key) =>
        {
            if (binder.Mapping(node, key) is not { } entries)
            {
                return;
            }

            foreach (var (k, v) in entries)
            {
                if (binder.Text(k, key) is { } entry && binder.Text(v, $"{key}.{entry}") is { } value)
                {
                    set(target, entry, value);
                }
            }
        }));

    /// <summary>A key whose value is a mapping with keys of its own; <paramref name="target"/> gives (or creates) the object they fill.</summary>
    public OptionSchema<T> Section<TSection>(string name, string help, Func<T, TSection> target, OptionSchema<TSection> schema, string? required = null) =>
        Add(new(name, help, required, (t, node, binder, key) =>
        {
            if (binder.Mapping(node, key) is not null)
            {
                binder.Bind(target(t), node, schema, key + ".");
            }
        })
        {
            Children = schema.Describe,
        });

    /// <summary>The keys of another options type, at this level (e.g. the group's settings at the top of the file).</summary>
    public OptionSchema<T> Include<TPart>(Func<T, TPart> target, OptionSchema<TPart> schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        foreach (var key in schema.Keys)
        {
            Add(new(key.Name, key.Help, key.Required, (t, node, binder, name) => key.Bind(target(t), node, binder, name)) { Children = key.Children });
        }

        foreach (var rule in schema.Rules)
        {
            _rules.Add(new(rule.Key, rule.AtKey, (t, present) => rule.Check(target(t), present)));
        }

        return this;
    }

    /// <summary>A key read by code of its own (a value of several forms); it reports through the binder.</summary>
    public OptionSchema<T> Custom(string name, string help, Action<T, ConfigNode, OptionBinder, string> bind, string? required = null) =>
        Add(new(name, help, required, bind));

    /// <summary>
    /// A check after the mapping is bound: <paramref name="check"/> gets the options and whether <paramref name="key"/>
    /// was given, and returns a problem or null. It is reported at that key, else at <paramref name="atKey"/>, else at the mapping.
    /// </summary>
    public OptionSchema<T> Rule(string key, Func<T, bool, string?> check, string? atKey = null)
    {
        _rules.Add(new(key, atKey, check));
        return this;
    }

    private OptionSchema<T> Add(OptionKey<T> key)
    {
        if (_keys.Any(k => k.Name == key.Name))
        {
            throw new InvalidOperationException($"option key '{key.Name}' is declared twice");
        }

        _keys.Add(key);
        return this;
    }
}

/// <summary>One declared key: its name, help text, an example when it is required, and how it binds.</summary>
public sealed record OptionKey<T>(string Name, string Help, string? Required, Action<T, ConfigNode, OptionBinder, string> Bind)
{
    /// <summary>The keys of a section under this key, given the section's path.</summary>
    public Func<string, IEnumerable<OptionKeyInfo>>? Children { get; init; }
}

/// <summary>A key as <c>resh config keys</c> lists it.</summary>
public sealed record OptionKeyInfo(string Path, string Help, string? Required);

internal sealed record OptionRule<T>(string Key, string? AtKey, Func<T, bool, string?> Check);
