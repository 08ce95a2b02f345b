using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Resh.Tests.SampleKv;

/// <summary>Runs only when a real redis-server is installed at <see cref="SampleKvRedisFixture.Path"/>.</summary>
public sealed class SampleKvRedisFactAttribute : FactAttribute
{
    public SampleKvRedisFactAttribute()
    {
        // Under CI a missing redis-server must fail the run (scripts/test.sh installs it), never skip it.
        if (!File.Exists(SampleKvRedisFixture.Path) && Environment.GetEnvironmentVariable("CI") != "true")
        {
            Skip = $"{SampleKvRedisFixture.Path} is not installed (apt-get install redis-server); under CI=true this test fails instead";
        }
    }
}

/// <summary>A throwaway redis-server on a free loopback port, started on first use, killed on dispose.</summary>
public sealed class SampleKvRedisFixture : IDisposable
{
    public const string Path = "/usr/bin/redis-server";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly string _directory = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "resh-samplekv-redis-" + Guid.NewGuid().ToString("N"));
    private Process? _process;
    private IPEndPoint? _endPoint;

    public async Task<IPEndPoint> GetEndPointAsync()
    {
        await _gate.WaitAsync();
        try
        {
            return _endPoint ??= await StartAsync();
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        if (_process is not null)
        {
            try
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }

            _process.Dispose();
        }

        _gate.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
        catch (UnauthorizedAccessException)
        {
            // Best effort.
        }
    }

    private async Task<IPEndPoint> StartAsync()
    {
        Directory.CreateDirectory(_directory);
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var start = new ProcessStartInfo(Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", _directory })
        {
            start.ArgumentList.Add(arg);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"redis-server exited with code {_process.ExitCode} before answering");
            }

            try
            {
                await using RespTestClient client = await RespTestClient.ConnectAsync(endPoint);
                if (await client.CommandAsync("PING") == "+PONG\r\n")
                {
                    return endPoint;
                }
            }
            catch (Exception ex) when (ex is SocketException or IOException)
            {
                // Not listening yet (or still loading).
            }

            if (deadline.Elapsed > StartTimeout)
            {
                throw new TimeoutException($"redis-server did not answer PING on port {port} within {StartTimeout}");
            }

            await Task.Delay(20);
        }
    }
}
