using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Sandbox.Orleans;

/// <summary>
/// One silo's side of every world it hosts agents of: the world's options (read once from its world grain), the
/// silo's model-call pipelines around its own clients, its embedding cache, and the core's agent runtime that builds
/// prompts and parses ratings exactly as the in-process sandbox does.
/// </summary>
internal sealed class SiloWorlds : IDisposable
{
    internal static readonly Counter<long> SiloInteractions = SandboxTelemetry.Meter.CreateCounter<long>(
        "sandbox.silo.interactions", description: "Interactions run on this silo (tag: silo), redone ones included.");

    private readonly OrleansSandboxSiloOptions _options;
    private readonly IGrainFactory _grains;
    private readonly ILoggerFactory _loggerFactory;
    private readonly Lazy<IEmbeddingGenerator<string, Embedding<float>>> _embeddings;
    private readonly ConcurrentDictionary<string, Lazy<Task<SiloWorld>>> _worlds = new(StringComparer.Ordinal);

    public SiloWorlds(OrleansSandboxSiloOptions options, IGrainFactory grains, ILocalSiloDetails silo, ILoggerFactory loggerFactory)
    {
        _options = options;
        _grains = grains;
        _loggerFactory = loggerFactory;
        SiloName = silo.Name;
        _embeddings = new(options.Embeddings);
    }

    /// <summary>The silo's name, recorded with each interaction it runs (per-silo counts).</summary>
    public string SiloName { get; }

    public IEmbeddingGenerator<string, Embedding<float>> Embeddings => _embeddings.Value;

    /// <summary>The models this silo would run a world of these options with (its clients are made and dropped to ask them).</summary>
    public SiloModels Models(string worldJson)
    {
        var options = JsonSerializer.Deserialize<SandboxOptions>(worldJson, WorldJson.Options)
            ?? throw new ArgumentException("The world's options are empty.", nameof(worldJson));
        using var agents = _options.AgentClient(options);
        using var observers = _options.ObserverClient?.Invoke(options);
        return Models(Embeddings, agents, observers ?? agents);
    }

    internal static SiloModels Models(IEmbeddingGenerator<string, Embedding<float>> embeddings, IChatClient agents, IChatClient observers)
    {
        var metadata = embeddings.GetService<EmbeddingGeneratorMetadata>();
        return new SiloModels(metadata?.ProviderName, metadata?.DefaultModelId, metadata?.DefaultModelDimensions,
            ModelIdentity.Describe(agents), ModelIdentity.Describe(observers), ModelIdentity.ModelId(agents), ModelIdentity.ModelId(observers));
    }

    public Task<SiloWorld> GetAsync(string runKey)
    {
        var lazy = _worlds.GetOrAdd(runKey, key => new Lazy<Task<SiloWorld>>(() => CreateAsync(key)));
        if (lazy.Value.IsFaulted) _worlds.TryRemove(new KeyValuePair<string, Lazy<Task<SiloWorld>>>(runKey, lazy));
        return lazy.Value;
    }

    private async Task<SiloWorld> CreateAsync(string runKey)
    {
        string json = await _grains.GetGrain<IWorldGrain>(runKey).GetAsync().ConfigureAwait(false);
        var options = JsonSerializer.Deserialize<SandboxOptions>(json, WorldJson.Options)
            ?? throw new InvalidOperationException($"World '{runKey}' has no options; the coordinator sets them before the run.");
        return new SiloWorld(options, _options, Embeddings, _loggerFactory);
    }

    public void Dispose()
    {
        foreach (var lazy in _worlds.Values)
        {
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully) lazy.Value.Result.Dispose();
        }
        if (_embeddings.IsValueCreated) _embeddings.Value.Dispose();
    }
}

/// <summary>A world as one silo runs it: its options, pipelines and the core's agent runtime.</summary>
internal sealed class SiloWorld : IDisposable
{
    private readonly IChatClient _agentClient;
    private readonly IChatClient? _observerClient;
    private readonly TokenBudget _budget;

    public SiloWorld(SandboxOptions options, OrleansSandboxSiloOptions silo, IEmbeddingGenerator<string, Embedding<float>> embeddings, ILoggerFactory loggerFactory)
    {
        Options = options;
        _budget = new TokenBudget(silo.Calls.TokenBudget);
        _agentClient = silo.AgentClient(options).AsBuilder().UseModelCallPolicy(silo.Calls, _budget, loggerFactory).Build();
        _observerClient = silo.ObserverClient?.Invoke(options).AsBuilder().UseModelCallPolicy(silo.Calls, _budget, loggerFactory).Build();
        Runtime = new AgentRuntime(options, new ModelCallLedger(options), new EmbeddingCache(embeddings));
        Models = SiloWorlds.Models(embeddings, _agentClient, _observerClient ?? _agentClient);
    }

    /// <summary>The models this world runs with on this silo; the coordinator checks that every silo agrees.</summary>
    public SiloModels Models { get; }

    public SandboxOptions Options { get; }

    public AgentRuntime Runtime { get; }

    /// <summary>Whether this silo's token budget is spent: it then starts no new interaction (the run stops cleanly).</summary>
    public bool BudgetExhausted => _budget.IsExhausted;

    public SocialAgent Agent(int id, string persona) =>
        new(id, SandboxWorld.PositionOf(id, Options.GridSize), persona, _agentClient, Runtime);

    public ObserverAgent Observer(int id) => new(id, _observerClient ?? _agentClient, Runtime);

    public void Dispose()
    {
        _agentClient.Dispose();
        _observerClient?.Dispose();
    }
}

/// <summary>How a world's options travel to the silos. The silos check the fingerprint, so a lossy round trip cannot pass unnoticed.</summary>
internal static class WorldJson
{
    public static readonly JsonSerializerOptions Options = new() { WriteIndented = false };
}
