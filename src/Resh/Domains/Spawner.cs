using System.Collections.Concurrent;
using System.Diagnostics;
using Resh.Native;

namespace Resh.Domains;

/// <summary>
/// Starts every child process on one dedicated, long-lived thread.
/// </summary>
/// <remarks>
/// PR_SET_PDEATHSIG fires when the <em>thread</em> that forked the child exits, not the process. .NET thread-pool
/// threads retire when idle, so a child started from one would be killed at a random moment. All
/// <see cref="Process.Start()"/> calls therefore run here; the thread lives until the owning factory is disposed
/// (or the process dies, which is when the signal is meant to fire).
/// </remarks>
internal sealed class Spawner : IDisposable
{
    private readonly BlockingCollection<Request> _queue = new();
    private readonly Thread _thread;
    private int _threadId;

    public Spawner(string name)
    {
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>OS thread id of the spawning thread (the parent the kernel sees).</summary>
    public int ThreadId => Volatile.Read(ref _threadId);

    /// <summary>Starts the process on the spawner thread; the process has EnableRaisingEvents set.</summary>
    public Task<Process> StartAsync(ProcessStartInfo startInfo)
    {
        var request = new Request(startInfo, new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            _queue.Add(request);
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(Spawner));
        }

        return request.Result.Task;
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join(TimeSpan.FromSeconds(10));
        }

        _queue.Dispose();
    }

    private void Run()
    {
        Volatile.Write(ref _threadId, Libc.GetThreadId());
        foreach (var request in _queue.GetConsumingEnumerable())
        {
            Process? process = null;
            try
            {
                process = new Process { StartInfo = request.StartInfo, EnableRaisingEvents = true };
                process.Start();
                request.Result.SetResult(process);
            }
            catch (Exception e)
            {
                process?.Dispose();
                request.Result.SetException(e);
            }
        }
    }

    private sealed record Request(ProcessStartInfo StartInfo, TaskCompletionSource<Process> Result);
}
