using Resh.Cli;

return await ReshCli.RunAsync(args);
