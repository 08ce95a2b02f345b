using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Resh.Benchmarks -- --filter '*'   (see benchmarks/micro.sh)
BenchmarkSwitcher.FromAssembly(typeof(Resh.Benchmarks.RequestPathBenchmarks).Assembly).Run(args);
