using Resh.Hosting;

namespace Resh.Cli;

/// <summary>
/// `resh run`'s reload (SIGHUP, <c>systemctl reload</c>, <c>resh reload</c>): reads the configuration file again,
/// compares each key's value with the one running and hands the changed keys to the host, which applies those it
/// can (<see cref="ReshHost.ReloadableKeys"/>). A key that needs a restart stays "changed" for later reloads until
/// the restart; one reload runs at a time.
/// </summary>
internal sealed class ConfigReloader(FileInfo file, ReshHost host, IReadOnlyDictionary<string, string> running, TextWriter output, TextWriter errors)
{
    private readonly SemaphoreSlim _one = new(1, 1);
    private readonly Dictionary<string, string> _running = new(running, StringComparer.Ordinal);

    public async Task<ReloadOutcome> ReloadAsync(CancellationToken cancellationToken)
    {
        await _one.WaitAsync(cancellationToken);
        Systemd.Reloading();
        ReloadOutcome outcome;
        try
        {
            outcome = Reload();
        }
        finally
        {
            _one.Release();
        }

        Systemd.Ready(outcome.ToString());
        await (outcome.Errors.Count == 0 ? output : errors).WriteLineAsync((outcome.Errors.Count == 0 ? "resh: " : "error: ") + outcome);
        return outcome;
    }

    private ReloadOutcome Reload()
    {
        ReshOptions next;
        IReadOnlyDictionary<string, string> read;
        try
        {
            (next, read) = ConfigLoader.LoadFileWithValues(file.FullName);
        }
        catch (ConfigException e)
        {
            return host.RefuseReload([.. e.Errors.Select(x => x.ToString())]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return host.RefuseReload([$"{file.FullName}: cannot read: {e.Message}"]);
        }

        var outcome = host.Reload(next, ConfigLoader.Changed(_running, read));
        foreach (var key in outcome.Applied)
        {
            if (read.TryGetValue(key, out var value))
            {
                _running[key] = value;
            }
            else
            {
                _running.Remove(key);
            }
        }

        return outcome;
    }
}
