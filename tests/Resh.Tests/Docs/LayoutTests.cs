using System.Text.RegularExpressions;

namespace Resh.Tests.Docs;

/// <summary>
/// The layout docs/architecture.md draws, checked on the sources: no two namespaces of src/Resh import each other
/// (directly or around a loop), and no type is named after a mode outside the mode folders.
/// </summary>
public sealed partial class LayoutTests
{
    private static readonly string Source = Path.Combine(CompatibilityTests.Root(), "src", "Resh");

    [GeneratedRegex(@"^namespace (Resh(?:\.\w+)?)[.;]", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();

    [GeneratedRegex(@"\bResh\.(\w+)\b")]
    private static partial Regex Reference();

    [GeneratedRegex(@"^\s*(?:(?:public|internal|private|file|sealed|static|abstract|partial|readonly)\s+)*(?:class|record|interface|enum|struct)\s+(\w+)", RegexOptions.Multiline)]
    private static partial Regex TypeDeclaration();

    [GeneratedRegex("Remus|Dresh|Spare|Etcd|Standby|Backup")]
    private static partial Regex ModeName();

    private static IEnumerable<(string Path, string Text)> Files() =>
        Directory.EnumerateFiles(Source, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(f => (Path.GetRelativePath(Source, f), File.ReadAllText(f)));

    /// <summary>Namespace → the namespaces of src/Resh it names (by using or qualified name), the root one left out.</summary>
    private static Dictionary<string, HashSet<string>> Imports()
    {
        var files = Files().ToList();
        var namespaces = files.Select(f => NamespaceLine().Match(f.Text).Groups[1].Value).Where(n => n.Length > 0).ToHashSet(StringComparer.Ordinal);
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var (_, text) in files)
        {
            var own = NamespaceLine().Match(text).Groups[1].Value;
            if (own is "" or "Resh")
            {
                continue;
            }

            var imports = graph.TryGetValue(own, out var set) ? set : graph[own] = new HashSet<string>(StringComparer.Ordinal);
            foreach (Match m in Reference().Matches(text))
            {
                var name = "Resh." + m.Groups[1].Value;
                if (name != own && namespaces.Contains(name))
                {
                    imports.Add(name);
                }
            }
        }

        return graph;
    }

    [Fact]
    public void No_namespace_imports_itself_through_another()
    {
        var graph = Imports();
        Assert.Contains("Resh.Group", graph.Keys);
        var cycles = new List<string>();
        foreach (var start in graph.Keys)
        {
            // Every namespace reachable from start; start among them is a loop.
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var path = new Dictionary<string, string>(StringComparer.Ordinal);
            var queue = new Queue<string>(graph[start]);
            foreach (var first in graph[start])
            {
                path[first] = start;
            }

            while (queue.TryDequeue(out var next))
            {
                if (!seen.Add(next))
                {
                    continue;
                }

                if (next == start)
                {
                    var loop = new List<string> { start };
                    for (var at = path[start]; at != start; at = path[at])
                    {
                        loop.Add(at);
                    }

                    loop.Add(start);
                    loop.Reverse();
                    cycles.Add(string.Join(" -> ", loop));
                    break;
                }

                foreach (var after in graph.GetValueOrDefault(next) ?? [])
                {
                    path.TryAdd(after, next);
                    queue.Enqueue(after);
                }
            }
        }

        Assert.True(cycles.Count == 0, "import loops: " + string.Join("; ", cycles));
    }

    [Fact]
    public void No_type_is_named_after_a_mode_outside_the_mode_folders()
    {
        var misplaced = Files()
            .Where(f => !f.Path.StartsWith("Modes" + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            .SelectMany(f => TypeDeclaration().Matches(f.Text).Select(m => (f.Path, Type: m.Groups[1].Value)))
            .Where(t => ModeName().IsMatch(t.Type))
            .Select(t => $"{t.Type} in {t.Path}")
            .ToList();
        Assert.True(misplaced.Count == 0, "named after a mode: " + string.Join(", ", misplaced));
        Assert.Contains(Files(), f => f.Path.EndsWith("RemusHosting.cs", StringComparison.Ordinal) && f.Path.StartsWith("Modes", StringComparison.Ordinal));
    }
}
