using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.TestingHost;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Tests.Sandbox;
using StableAlignment.Sandbox.Orleans;

namespace StableAlignment.Core.Tests.Plugins.Orleans;

/// <summary>
/// In-process Orleans clusters for the tests: every silo runs the offline society behind the test call policy and the
/// 64-bin hashing embedder (as <see cref="SandboxTestKit.Offline"/> does in process), and keeps grain state in one
/// SQLite file, so a silo that is killed leaves its agents' state to the others and a new cluster finds it again.
/// </summary>
internal static class OrleansTestClusters
{
    public static async Task<InProcessTestCluster> StartAsync(short silos, string storagePath, TimeSpan callLatency = default)
    {
        var builder = new InProcessTestClusterBuilder(silos);
        builder.Options.ConfigureFileLogging = false;
        builder.ConfigureSilo((_, silo) =>
        {
            silo.UseStableAlignmentSandbox(new OrleansSandboxSiloOptions
            {
                AgentClient = world => callLatency > TimeSpan.Zero
                    ? new LatencyChatClient(new OfflineSocietyChatClient(world.Seed), callLatency)
                    : new OfflineSocietyChatClient(world.Seed),
                Embeddings = () => new HashingEmbeddingGenerator(64),
                Calls = SandboxTestKit.Calls,
                SqliteStoragePath = storagePath,
            });
            // A killed silo is declared dead after a missed probe or two, so the run does not wait long for its grains.
            silo.Services.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = TimeSpan.FromSeconds(1);
                o.NumMissedProbesLimit = 2;
                o.NumVotesForDeathDeclaration = 1;
            });
        });
        builder.ConfigureClient(client => client.UseStableAlignmentSandbox());
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>The Orleans engine over the cluster's client, as a user gets it from the client's services.</summary>
    public static ISandbox Sandbox(InProcessTestCluster cluster, SandboxOptions options) =>
        cluster.Client.ServiceProvider.GetRequiredService<ISandboxEngine>().Create(options,
            new SandboxBackends { AgentClient = new NeverCalledChatClient(), Embeddings = new HashingEmbeddingGenerator(64) });

    /// <summary>The factory's sandbox, asking again for a reply after 3 s (a reply lost with a killed silo is not waited for long).</summary>
    public static ISandbox QuickRetrySandbox(InProcessTestCluster cluster, SandboxOptions options) =>
        OrleansSandboxFactory.Create(cluster.Client, options, run: new OrleansRunOptions { ReplyTimeout = TimeSpan.FromSeconds(3) });

    /// <summary>The silo that hosts agent <paramref name="agentId"/>: agents are dealt by id over the silos sorted by address.</summary>
    public static InProcessSiloHandle SiloOfAgent(InProcessTestCluster cluster, int agentId)
    {
        var silos = cluster.GetActiveSilos().OrderBy(s => s.SiloAddress).ToList();
        return silos[agentId % silos.Count];
    }

    /// <summary>The engine takes the model and embeddings from the silos; the client's backends only carry the world.</summary>
    private sealed class NeverCalledChatClient : IChatClient
    {
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("The Orleans engine must call the silos' clients, not the client's.");

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("The Orleans engine must call the silos' clients, not the client's.");

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    /// <summary>Answers after a fixed delay, so that a silo still has interactions in flight when it is killed.</summary>
    private sealed class LatencyChatClient(IChatClient inner, TimeSpan latency) : DelegatingChatClient(inner)
    {
        public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default)
        {
            await Task.Delay(latency, cancellationToken);
            return await base.GetResponseAsync(messages, options, cancellationToken);
        }
    }
}
