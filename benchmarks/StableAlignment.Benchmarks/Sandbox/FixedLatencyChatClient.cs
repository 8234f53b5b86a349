using Microsoft.Extensions.AI;

namespace StableAlignment.Benchmarks.Sandbox;

/// <summary>A model that answers after a fixed latency (like a remote server under no load), counting its calls.</summary>
internal sealed class FixedLatencyChatClient(IChatClient inner, TimeSpan latency) : DelegatingChatClient(inner)
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _calls);
        await Task.Delay(latency, cancellationToken).ConfigureAwait(false);
        return await base.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
    }
}
