using Resh.Native;
using Resh.Remus;

namespace Resh.Tests.Remus;

public sealed class TermFileTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "resh-term-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private string TermPath => Path.Combine(_dir, "remus", "term");

    [Fact]
    public void A_term_is_written_fsynced_renamed_and_its_directory_fsynced_in_that_order()
    {
        var calls = new RecordingCalls();
        var terms = new TermFile(TermPath, calls);
        Assert.Equal(0UL, terms.Read());

        terms.Write(7);

        var temp = Path.GetFullPath(TermPath) + ".tmp";
        Assert.Equal(
            [$"write+fsync {temp}", $"rename {temp} -> {Path.GetFullPath(TermPath)}", $"fsync-dir {Path.GetDirectoryName(Path.GetFullPath(TermPath))}"],
            calls.Log);
        Assert.Equal(7UL, terms.Read());
        Assert.False(File.Exists(temp));
    }

    [Fact]
    public void A_write_that_fails_before_its_rename_leaves_the_old_term()
    {
        var terms = new TermFile(TermPath);
        terms.Write(5);
        var failing = new TermFile(TermPath, new RecordingCalls { FailRename = true });

        Assert.Throws<IOException>(() => failing.Write(6));
        Assert.Equal(5UL, terms.Read());
    }

    [Theory]
    [InlineData("")]
    [InlineData("12x")]
    [InlineData("-1")]
    public void A_damaged_term_file_is_refused_instead_of_read_as_zero(string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(TermPath)!);
        File.WriteAllText(TermPath, content);

        var e = Assert.Throws<InvalidDataException>(() => new TermFile(TermPath).Read());
        Assert.Contains(TermPath, e.Message, StringComparison.Ordinal);
        Assert.Contains("must never go back", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Does the real calls and records them; can fail the rename like a crash before it.</summary>
    private sealed class RecordingCalls : IDurableFileCalls
    {
        public List<string> Log { get; } = [];

        public bool FailRename { get; init; }

        public void WriteAndSync(string path, ReadOnlySpan<byte> content)
        {
            DurableFile.SystemCalls.Instance.WriteAndSync(path, content);
            Log.Add($"write+fsync {path}");
        }

        public void Rename(string from, string to)
        {
            if (FailRename)
            {
                throw new IOException("injected: rename failed");
            }

            DurableFile.SystemCalls.Instance.Rename(from, to);
            Log.Add($"rename {from} -> {to}");
        }

        public void SyncDirectory(string directory)
        {
            DurableFile.SystemCalls.Instance.SyncDirectory(directory);
            Log.Add($"fsync-dir {directory}");
        }
    }
}
