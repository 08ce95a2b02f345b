using System.Diagnostics;

namespace Resh.Tests;

internal static class Tools
{
    /// <summary>Polls <paramref name="condition"/> until it holds; fails after <paramref name="timeout"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < timeout, $"condition not met within {timeout.TotalSeconds:0}s");
            await Task.Delay(10);
        }
    }
}
