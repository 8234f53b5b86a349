using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Microsoft.Extensions.AI;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Sandbox;
using StableAlignment.Sandbox.Orleans;

namespace StableAlignment.Benchmarks.Sandbox;

/// <summary>
/// Scale-out of the Orleans engine: every model call takes a fixed 100 ms and each silo lets 16 be in flight, on a
/// 10 x 10 grid for 10 rounds (1,000 interactions). <see cref="Silos"/> = 0 is the in-process sandbox with the same
/// cap, the reference for the engine's overhead at 1 silo. The calls are I/O-bound, so the per-silo cap is what scales.
/// Goals: 2 silos at least 1.8x and 4 silos at least 3.2x the interactions/s of 1 silo; 1 silo at most 1.3x slower
/// than in process. Prints one line per run; run with <c>--filter *OrleansScaling*</c>.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 0, iterationCount: 1)]
public class OrleansScalingBenchmark
{
    private const int InFlightPerSilo = 16;
    private static readonly TimeSpan Latency = TimeSpan.FromMilliseconds(100);
    private static readonly SandboxOptions World = new() { GridSize = 10, PeersPerInteraction = 4, Seed = 42 };
    private string _folder = "";

    /// <summary>Silos in one process; 0 = the in-process sandbox.</summary>
    [Params(0, 1, 2, 4)]
    public int Silos { get; set; }

    [IterationSetup]
    public void Setup() => _folder = Directory.CreateTempSubdirectory("sa-orleans-bench-").FullName;

    [IterationCleanup]
    public void Cleanup() => Directory.Delete(_folder, recursive: true);

    [Benchmark]
    public async Task<double> InteractionsPerSecond()
    {
        var calls = new ModelCallOptions { MaxConcurrentCalls = InFlightPerSilo };
        using var embeddings = new HashingEmbeddingGenerator();
        string log = Path.Combine(_folder, "sandbox.db");
        double seconds;
        long interactions;
        if (Silos == 0)
        {
            using var pipeline = Slow(World).AsBuilder().UseModelCallPolicy(calls).Build();
            await using var sandbox = SandboxFactory.Create(World, new SandboxBackends { AgentClient = pipeline, Embeddings = embeddings });
            (seconds, interactions) = await TimeAsync(sandbox, log);
        }
        else
        {
            var silo = new OrleansSandboxSiloOptions { AgentClient = Slow, Embeddings = () => new HashingEmbeddingGenerator(), Calls = calls };
            await using var cluster = await OrleansSandboxHost.StartLocalAsync(Silos, silo, _folder);
            await using var sandbox = cluster.Engine.Create(World, new SandboxBackends { AgentClient = new OfflineSocietyChatClient(World.Seed), Embeddings = embeddings });
            (seconds, interactions) = await TimeAsync(sandbox, log);
        }
        double rate = interactions / seconds;
        Console.WriteLine(FormattableString.Invariant(
            $"// orleans-scaling: {(Silos == 0 ? "in-process" : $"{Silos} silo(s)")}: {interactions} interactions in {seconds:F1} s = {rate:F2} interactions/s"));
        return rate;
    }

    private static FixedLatencyChatClient Slow(SandboxOptions world) => new FixedLatencyChatClient(new OfflineSocietyChatClient(world.Seed, formatErrorRate: 0), Latency);

    private static async Task<(double Seconds, long Interactions)> TimeAsync(ISandbox sandbox, string log)
    {
        var clock = Stopwatch.StartNew();
        var result = await sandbox.RunAsync(10, log);
        return (clock.Elapsed.TotalSeconds, result.InteractionsThisRun);
    }
}
