using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Microsoft.Extensions.AI;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.ModelCalls;

namespace StableAlignment.Benchmarks.Sandbox;

/// <summary>
/// Scheduler efficiency: every model call takes a fixed 100 ms and the call policy lets 64 be in flight. The ideal wall time is
/// calls x 100 ms / 64; the printed ratio (wall / ideal) should be at most 1.15.
/// Run with <c>--filter *SchedulerEfficiency*</c>.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 0, iterationCount: 1)]
public class SchedulerEfficiencyBenchmark
{
    private const int InFlight = 64;
    private static readonly TimeSpan Latency = TimeSpan.FromMilliseconds(100);
    private string _folder = "";

    [IterationSetup]
    public void Setup() => _folder = Directory.CreateTempSubdirectory("sa-bench-").FullName;

    [IterationCleanup]
    public void Cleanup() => Directory.Delete(_folder, recursive: true);

    [Benchmark]
    public async Task<double> FixedLatencyClient()
    {
        var options = new SandboxOptions { GridSize = 10, PeersPerInteraction = 4, Seed = 42 };
        var client = new FixedLatencyChatClient(new OfflineSocietyChatClient(options.Seed, formatErrorRate: 0), Latency);
        // The whole call policy, as a real run has it: budget, telemetry, the cap of 64, resilience.
        using var pipeline = client.AsBuilder().UseModelCallPolicy(new ModelCallOptions { MaxConcurrentCalls = InFlight }).Build();
        using var embeddings = new ConstantEmbeddingGenerator();
        await using var sandbox = SandboxFactory.Create(options, new SandboxBackends { AgentClient = pipeline, Embeddings = embeddings });
        var started = DateTime.UtcNow;
        await sandbox.RunAsync(10, Path.Combine(_folder, "sandbox.db"));
        double wall = (DateTime.UtcNow - started).TotalSeconds;
        double ideal = client.Calls * Latency.TotalSeconds / InFlight;
        Console.WriteLine(FormattableString.Invariant(
            $"// scheduler: {client.Calls} calls, wall {wall:F2} s, ideal {ideal:F2} s, ratio {wall / ideal:F3}"));
        return wall / ideal;
    }

    /// <summary>Embeddings are not what is measured here.</summary>
    private sealed class ConstantEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
    {
        public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
            CancellationToken cancellationToken = default) =>
            Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(_ => new Embedding<float>(new float[] { 1, 0, 0, 0 }))));

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }
}
