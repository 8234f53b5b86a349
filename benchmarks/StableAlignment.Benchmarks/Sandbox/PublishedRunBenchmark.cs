using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Sandbox;
using StableAlignment.Embeddings.MiniLM;

namespace StableAlignment.Benchmarks.Sandbox;

/// <summary>
/// The reference's published run: 100 agents on a 10 x 10 grid, 50 rounds, 4 peers each, on the offline society with
/// MiniLM embeddings (5,000 interactions, about 65,000 model calls). Goal on a 2-core machine: under 90 s.
/// Run with <c>--filter *PublishedRun*</c>; interactions/s = 5000 / the reported time.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 0, iterationCount: 1)]
public class PublishedRunBenchmark
{
    private string _folder = "";

    [IterationSetup]
    public void Setup() => _folder = Directory.CreateTempSubdirectory("sa-bench-").FullName;

    [IterationCleanup]
    public void Cleanup() => Directory.Delete(_folder, recursive: true);

    [Benchmark]
    public async Task<long> TenByTenFiftyRounds()
    {
        var options = new SandboxOptions { GridSize = 10, PeersPerInteraction = 4, Seed = 42 };
        var started = DateTime.UtcNow;
        using var embeddings = new MiniLmEmbeddingGenerator();
        await using var sandbox = OfflineSocietyChatClient.CreateSandbox(options, embeddings);
        var result = await sandbox.RunAsync(50, Path.Combine(_folder, "sandbox.db"));
        double seconds = (DateTime.UtcNow - started).TotalSeconds;
        Console.WriteLine(FormattableString.Invariant(
            $"// published run: {result.InteractionsInLog} interactions in {seconds:F1} s = {result.InteractionsInLog / seconds:F0} interactions/s, tokens {result.TokensIn}+{result.TokensOut}"));
        return result.InteractionsInLog;
    }
}
