using System.Runtime.CompilerServices;

namespace Resh.IntegrationTests;

internal static class InlineCompletions
{
    /// <summary>
    /// The gateways these tests host in-process run with socket completions on the socket engine's threads, as
    /// `resh` itself does (src/Resh.Cli/Program.cs), so the tests exercise the threading the product runs with.
    /// </summary>
    [ModuleInitializer]
    internal static void Enable()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
        {
            Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
        }
    }
}
