using Resh.Options;

namespace Resh.Tests.Cli;

/// <summary>The generic binder on a small schema: what a new setting gets for free.</summary>
public sealed class OptionBinderTests
{
    private sealed class Settings
    {
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(1);

        public string Mode { get; set; } = "a";

        public Inner Inner { get; } = new();
    }

    private sealed class Inner
    {
        public long Count { get; set; }
    }

    private static readonly OptionSchema<Inner> InnerKeys = new OptionSchema<Inner>()
        .Value("count", "how many", OptionValues.Integer(1, 10), (o, v) => o.Count = v, required: "count: 3");

    private static readonly OptionSchema<Settings> Keys = new OptionSchema<Settings>()
        .Value("timeout", "how long", OptionValues.Duration(), (o, v) => o.Timeout = v)
        .Value("mode", "a or b", OptionValues.Choice("a or b", ("a", "a"), ("b", "b")), (o, v) => o.Mode = v)
        .Section("inner", "the inner part", o => o.Inner, InnerKeys)
        .Rule("inner", (o, given) => o.Mode == "b" && !given ? "inner: mode b needs it" : null, atKey: "mode");

    private static ConfigNode Map(int line, params (string Key, ConfigNode Value)[] entries) =>
        ConfigNode.Mapping(line, [.. entries.Select(e => (ConfigNode.Scalar(e.Value.Line, e.Key), e.Value))]);

    private static (Settings Settings, IReadOnlyList<ConfigProblem> Problems) Bind(ConfigNode root)
    {
        var settings = new Settings();
        var binder = new OptionBinder(new OptionContext("/tmp"));
        binder.Bind(settings, root, Keys);
        return (settings, binder.Problems);
    }

    [Fact]
    public void Values_and_sections_are_bound_and_defaults_stay()
    {
        var (settings, problems) = Bind(Map(1, ("mode", ConfigNode.Scalar(2, "b")), ("inner", Map(3, ("count", ConfigNode.Scalar(3, "7"))))));
        Assert.Empty(problems);
        Assert.Equal(("b", 7L, TimeSpan.FromSeconds(1)), (settings.Mode, settings.Inner.Count, settings.Timeout));
    }

    [Fact]
    public void Every_problem_is_reported_at_its_line_with_the_full_key()
    {
        var (_, problems) = Bind(Map(
            1,
            ("timout", ConfigNode.Scalar(2, "5s")),
            ("mode", ConfigNode.Scalar(3, "c")),
            ("inner", Map(4, ("cuont", ConfigNode.Scalar(5, "1")))),
            ("mode", ConfigNode.Scalar(6, "a"))));
        Assert.Contains(new ConfigProblem(2, "timout: unknown key (did you mean 'timeout'?); known keys here: timeout, mode, inner"), problems);
        Assert.Contains(new ConfigProblem(6, "mode: given twice; keep one"), problems);
        Assert.Contains(new ConfigProblem(3, "mode: 'c' is not known; use a or b"), problems);
        Assert.Contains(new ConfigProblem(5, "inner.cuont: unknown key (did you mean 'inner.count'?); known keys here: count"), problems);
        Assert.Contains(new ConfigProblem(4, "inner.count: missing; add e.g. 'count: 3'"), problems);
    }

    [Fact]
    public void A_rule_is_reported_at_the_key_it_names_else_at_its_fallback()
    {
        var (_, problems) = Bind(Map(1, ("mode", ConfigNode.Scalar(2, "b"))));
        Assert.Equal([new ConfigProblem(2, "inner: mode b needs it")], problems);
    }

    [Fact]
    public void A_value_of_the_wrong_shape_is_named()
    {
        var (_, problems) = Bind(Map(1, ("timeout", ConfigNode.List(2, [])), ("inner", ConfigNode.Scalar(3, "x"))));
        Assert.Contains(new ConfigProblem(2, "timeout: expected a single value"), problems);
        Assert.Contains(new ConfigProblem(3, "inner: expected a mapping of keys"), problems);
    }

    [Fact]
    public void Declaring_a_key_twice_is_a_programming_error()
    {
        Assert.Throws<InvalidOperationException>(() => new OptionSchema<Inner>().Value("count", "x", OptionValues.Text, (_, _) => { }).Value("count", "y", OptionValues.Text, (_, _) => { }));
    }
}
