using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.Sandbox;

/// <summary>A fast, deterministic stand-in for MiniLM: hashed bag of words, L2-normalised, 64 dims.</summary>
internal sealed class HashingEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    public const int Dimensions = 64;

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default) =>
        Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(v => new Embedding<float>(Embed(v)))));

    public static float[] Embed(string text)
    {
        var v = new float[Dimensions];
        foreach (string w in text.ToLowerInvariant().Split([' ', '?', '.', ',', '!', '\''], StringSplitOptions.RemoveEmptyEntries))
        {
            uint h = 2166136261;
            foreach (char c in w) h = (h ^ c) * 16777619;
            v[h % Dimensions] += 1;
        }
        double norm = Math.Sqrt(v.Sum(x => (double)x * x));
        if (norm > 0) for (int i = 0; i < v.Length; i++) v[i] = (float)(v[i] / norm);
        return v;
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceType == typeof(EmbeddingGeneratorMetadata) ? new EmbeddingGeneratorMetadata("test-hashing", null, "bag-of-words", Dimensions) : null;

    public void Dispose()
    {
    }
}

/// <summary>Wraps a client: optional fixed delay, counts calls and the most calls seen in flight at once.</summary>
internal sealed class InstrumentedChatClient(IChatClient inner, TimeSpan delay = default) : IChatClient
{
    private int _inFlight;
    private int _maxInFlight;
    private int _calls;
    private readonly Lock _lock = new();

    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    public int Calls => Volatile.Read(ref _calls);

    /// <summary>(call id, start sequence number, end sequence number) of every call, in start order.</summary>
    public List<(string CallId, int Start, int End)> Timeline { get; } = [];

    private int _clock;

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        int now = Interlocked.Increment(ref _inFlight);
        Interlocked.Increment(ref _calls);
        int seen;
        while ((seen = Volatile.Read(ref _maxInFlight)) < now && Interlocked.CompareExchange(ref _maxInFlight, now, seen) != seen) { }
        string id = options?.AdditionalProperties?.TryGetValue("stable_alignment.call_id", out object? v) == true ? (string)v! : "";
        int index;
        lock (_lock)
        {
            index = Timeline.Count;
            Timeline.Add((id, _clock++, -1));
        }
        try
        {
            if (delay > TimeSpan.Zero) await Task.Delay(delay, cancellationToken);
            return await inner.GetResponseAsync(messages, options, cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            lock (_lock) Timeline[index] = Timeline[index] with { End = _clock++ };
        }
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var r = await GetResponseAsync(messages, options, cancellationToken);
        foreach (var u in r.ToChatResponseUpdates()) yield return u;
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }
}

internal static class SandboxTestKit
{
    /// <summary>A small offline world with the hashing embedder (fast; MiniLM is covered by its own test).</summary>
    public static ISandbox Offline(SandboxOptions options, IChatClient? client = null, IChatClient? observerClient = null) =>
        SandboxFactory.Create(options, new SandboxBackends
        {
            AgentClient = client ?? new OfflineSocietyChatClient(options.Seed),
            ObserverClient = observerClient,
            Embeddings = new HashingEmbeddingGenerator(),
        });

    public static SandboxOptions Small(int grid = 3, long seed = 7) => new()
    {
        GridSize = grid,
        Seed = seed,
        PeersPerInteraction = 3,
        MemorySeedSize = 10,
        MaxConcurrentCalls = 8,
        RetryBaseDelay = TimeSpan.FromMilliseconds(1),
    };
}
