using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Resh.Benchmarks -- --filter '*'   (see benchmarks/micro.sh)
// dotnet benchmarks/Resh.Benchmarks/bin/Release/net10.0/Resh.Benchmarks.dll etcd-put URL [COUNT]   (see benchmarks/dresh-vs-resh.sh)
// dotnet benchmarks/Resh.Benchmarks/bin/Release/net10.0/Resh.Benchmarks.dll gap-probe HOST:PORT [SECONDS]   (see benchmarks/migration.sh)
if (args is ["gap-probe", ..])
{
    return await Resh.Benchmarks.GapProbe.RunAsync(args);
}

if (args is ["etcd-put", ..])
{
    return await Resh.Benchmarks.EtcdPutProbe.RunAsync(args);
}

BenchmarkSwitcher.FromAssembly(typeof(Resh.Benchmarks.RequestPathBenchmarks).Assembly).Run(args);
return 0;
