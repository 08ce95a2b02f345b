using Resh.Cli;

namespace Resh.IntegrationTests;

/// <summary>`resh store` as an operator uses it.</summary>
public sealed class StoreCliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "resh-store-cli-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Output)> ReshAsync(params string[] args)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var code = await ReshCli.RunAsync(args, output, errors).WaitAsync(TimeSpan.FromMinutes(2));
        return (code, output.ToString() + errors);
    }

    [Fact]
    public async Task Snapshot_list_verify_restore_and_a_damaged_pack_is_named()
    {
        var source = Path.Combine(_dir, "source");
        Directory.CreateDirectory(Path.Combine(source, "nested"));
        var random = new Random(3);
        var big = new byte[3_000_000];
        random.NextBytes(big);
        await File.WriteAllBytesAsync(Path.Combine(source, "nested", "dump.rdb"), big);
        await File.WriteAllTextAsync(Path.Combine(source, "small.txt"), "hello");
        await File.WriteAllBytesAsync(Path.Combine(source, "empty"), []);
        var store = Path.Combine(_dir, "store");

        var (code, text) = await ReshAsync("store", "snapshot", store, source, "--label", "log-position=42");
        Assert.True(code == 0, text);
        (code, text) = await ReshAsync("store", "list", store);
        Assert.Equal(0, code);
        Assert.Contains("log-position=42", text, StringComparison.Ordinal);
        (code, text) = await ReshAsync("store", "verify", store);
        Assert.True(code == 0, text);

        var target = Path.Combine(_dir, "restored");
        (code, text) = await ReshAsync("store", "restore", store, "latest", target);
        Assert.True(code == 0, text);
        Assert.Equal(big, await File.ReadAllBytesAsync(Path.Combine(target, "nested", "dump.rdb")));
        Assert.Equal("hello", await File.ReadAllTextAsync(Path.Combine(target, "small.txt")));
        Assert.Empty(await File.ReadAllBytesAsync(Path.Combine(target, "empty")));

        // One flipped byte in the middle of a pack.
        var pack = Directory.GetFiles(Path.Combine(store, "packs"), "*.pack", SearchOption.AllDirectories).OrderByDescending(f => new FileInfo(f).Length).First();
        var bytes = await File.ReadAllBytesAsync(pack);
        bytes[bytes.Length / 2] ^= 0x01;
        await File.WriteAllBytesAsync(pack, bytes);
        (code, text) = await ReshAsync("store", "verify", store);
        Assert.Equal(1, code);
        Assert.Contains(Path.GetFileNameWithoutExtension(pack), text, StringComparison.Ordinal);

        (code, text) = await ReshAsync("store", "list", Path.Combine(_dir, "missing"));
        Assert.NotEqual(0, code);
        Assert.Contains("does not exist", text, StringComparison.Ordinal);
    }
}
