using Resh.Cli;

namespace Resh.Tests.Cli;

/// <summary>`resh run --replaces MEMBER` is refused, with the reason, before anything starts when it cannot mean anything.</summary>
public sealed class ReplacesOptionTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "resh-replaces-" + Guid.NewGuid().ToString("N"));

    public ReplacesOptionTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Config(string ordering)
    {
        var path = Path.Combine(_dir, "c.yaml");
        File.WriteAllText(path, $$"""
            service: { protocol: resp, listen: 127.0.0.1:6380 }
            mode: resh
            faults: 1
            state-dir: {{_dir}}/state
            {{ordering}}
            replicas:
              count: 3
              command: redis-server --port {port}

            """);
        return path;
    }

    [Theory]
    [InlineData("", "only a D-RESH host (ordering: etcd) takes the place of a member")]
    [InlineData("ordering: { etcd: [http://127.0.0.1:1], cluster: c, member: 3 }", "--replaces: must name another member of the cluster")]
    public async Task A_replacement_that_cannot_mean_anything_is_refused_before_the_start(string ordering, string reason)
    {
        var errors = new StringWriter();
        Assert.Equal(ReshCli.ExitUsage, await ReshCli.RunAsync(["run", Config(ordering), "--replaces", "3", "--log-level", "None"], new StringWriter(), errors).WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Contains(reason, errors.ToString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_dir, "state")), "nothing started");
    }
}
