using Resh.Cli;
using Resh.Remus;

namespace Resh.Tests.Cli;

public sealed class LinkCertificateCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "resh-linkcert-" + Guid.NewGuid().ToString("N"));

    public LinkCertificateCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Writes_a_pair_the_link_can_load_with_the_key_private_and_never_overwrites()
    {
        var (cert, key) = (Path.Combine(_dir, "pair.pem"), Path.Combine(_dir, "pair.key"));
        var output = new StringWriter();
        Assert.Equal(0, await ReshCli.RunAsync(["link-certificate", cert, key], output, new StringWriter()).WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Contains("remus.tls-certificate", output.ToString(), StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        }
        using (var tls = PinnedTls.Load(cert, key, "remus.tls-certificate/remus.tls-key"))
        {
            Assert.NotNull(tls);
        }

        var before = await File.ReadAllTextAsync(key);
        var errors = new StringWriter();
        Assert.Equal(2, await ReshCli.RunAsync(["link-certificate", cert, key], new StringWriter(), errors).WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Contains("not overwritten", errors.ToString(), StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllTextAsync(key));
    }
}
