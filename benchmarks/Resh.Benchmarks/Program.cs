using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Resh.Benchmarks -- --filter '*'   (see benchmarks/micro.sh)
// dotnet benchmarks/Resh.Benchmarks/bin/Release/net10.0/Resh.Benchmarks.dll etcd-put URL [COUNT]   (see benchmarks/dresh-vs-resh.sh)
if (args is ["etcd-put", ..])
{
    return await Resh.Benchmarks.EtcdPutProbe.RunAsync(args);
}

BenchmarkSwitcher.FromAssembly(typeof(Resh.Benchmarks.RequestPathBenchmarks).Assembly).Run(args);
return 0;
