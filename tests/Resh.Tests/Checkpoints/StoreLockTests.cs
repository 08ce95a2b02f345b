using System.Diagnostics;
using Resh.Checkpoints;

namespace Resh.Tests.Checkpoints;

public sealed class StoreLockTests : IDisposable
{
    private readonly StoreScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task A_second_writer_is_refused_with_a_clear_message_and_readers_are_not()
    {
        await using var writer = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        var refused = await Assert.ThrowsAsync<StoreLockedException>(() => CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small()));
        Assert.Contains("locked by another writer", refused.Message, StringComparison.Ordinal);
        Assert.Contains(_scratch.Store, refused.Message, StringComparison.Ordinal);
        Assert.Equal(Environment.ProcessId, refused.HolderPid);

        await using var reader = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader());
        Assert.Empty(await reader.ListAsync());
    }

    [Fact]
    public async Task The_lock_is_released_on_dispose()
    {
        (await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small())).Dispose();
        await using var again = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        Assert.False(again.IsReadOnly);
    }

    [Fact]
    public async Task A_lock_held_by_another_process_is_released_when_that_process_is_killed()
    {
        if (!File.Exists("/usr/bin/flock") && !File.Exists("/bin/flock"))
        {
            return; // util-linux flock(1) is the foreign holder; nothing to test without it
        }

        (await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small())).Dispose();
        var lockFile = Path.Combine(_scratch.Store, "lock");

        // flock(1) takes LOCK_EX on the file and holds it while its child runs; -o keeps the child
        // from inheriting the descriptor, so only the flock process itself holds the lock.
        var start = new ProcessStartInfo("flock", ["-o", lockFile, "-c", "echo locked; exec sleep 1000"])
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        using var holder = Process.Start(start)!;
        try
        {
            Assert.Equal("locked", await holder.StandardOutput.ReadLineAsync());
            var refused = await Assert.ThrowsAsync<StoreLockedException>(() => CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small()));
            Assert.Null(refused.HolderPid); // flock(1) writes no pid

            holder.Kill(entireProcessTree: true); // SIGKILL: no chance to unlock
            await holder.WaitForExitAsync();

            await using var writer = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
            Assert.False(writer.IsReadOnly);
        }
        finally
        {
            if (!holder.HasExited)
            {
                holder.Kill(entireProcessTree: true);
            }
        }
    }
}
