using BenchmarkDotNet.Running;

// Pick benchmarks interactively or with --filter, e.g. `--filter *ContrastiveLoss*`.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
