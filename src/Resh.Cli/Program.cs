using Resh.Cli;

// Socket completions run on the socket engine's threads instead of being handed to the thread pool: a request then
// crosses no thread on its way from the client through the replicas and back (see docs/benchmarks.md, "The fast
// path"). Read once, when the first socket is created; set DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 to keep
// the hand-offs. Safe because nothing on the request path blocks a thread (no sync-over-async, no waits on locks
// held across I/O).
const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
if (Environment.GetEnvironmentVariable(InlineCompletions) is null)
{
    Environment.SetEnvironmentVariable(InlineCompletions, "1");
}

return await ReshCli.RunAsync(args);
