using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.ChatClients;

namespace StableAlignment.Core.Tests.Sandbox;

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

    public object? GetService(Type serviceType, object? serviceKey = null) => inner.GetService(serviceType, serviceKey);

    public void Dispose()
    {
    }
}

internal static class SandboxTestKit
{
    /// <summary>The call policy of test worlds: a few calls in flight, retries almost at once.</summary>
    public static ModelCallOptions Calls { get; } = new() { MaxConcurrentCalls = 8, RetryBaseDelay = TimeSpan.FromMilliseconds(1) };

    /// <summary>
    /// A small offline world behind the call policy, with the 64-bin hashing embedder (fast; MiniLM is covered by its
    /// own test). The clients get <paramref name="calls"/> (default <see cref="Calls"/>) and share one budget.
    /// </summary>
    public static ISandbox Offline(SandboxOptions options, IChatClient? client = null, IChatClient? observerClient = null,
        ModelCallOptions? calls = null, SandboxSchedule? schedule = null)
    {
        calls ??= Calls;
        var budget = new TokenBudget(calls.TokenBudget);
        IChatClient Policy(IChatClient inner) => inner.AsBuilder().UseModelCallPolicy(calls, budget).Build();
        return SandboxFactory.Create(options, new SandboxBackends
        {
            AgentClient = Policy(client ?? new OfflineSocietyChatClient(options.Seed)),
            ObserverClient = observerClient is null ? null : Policy(observerClient),
            Embeddings = new HashingEmbeddingGenerator(64),
        }, schedule);
    }

    public static SandboxOptions Small(int grid = 3, long seed = 7) => new()
    {
        GridSize = grid,
        Seed = seed,
        PeersPerInteraction = 3,
        MemorySeedSize = 10,
    };
}
