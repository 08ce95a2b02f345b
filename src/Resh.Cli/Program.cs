using System.CommandLine;
using Resh.Cli;

return await ReshCli.RunAsync(args);
