using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace StableAlignment.Core.ModelCalls;

/// <summary>
/// Lets at most <see cref="MaxConcurrentCalls"/> calls through to the inner client at once; the rest wait in order of
/// arrival. A streaming call holds its slot until its enumeration ends.
/// </summary>
public sealed class ConcurrencyLimitingChatClient : DelegatingChatClient
{
    private readonly SemaphoreSlim _slots;
    private int _inFlight;

    /// <summary>Creates the client.</summary>
    /// <param name="innerClient">The client to call.</param>
    /// <param name="maxConcurrentCalls">The cap, at least 1.</param>
    public ConcurrencyLimitingChatClient(IChatClient innerClient, int maxConcurrentCalls) : base(innerClient)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrentCalls, 1);
        MaxConcurrentCalls = maxConcurrentCalls;
        _slots = new SemaphoreSlim(maxConcurrentCalls, maxConcurrentCalls);
    }

    /// <summary>The cap.</summary>
    public int MaxConcurrentCalls { get; }

    /// <summary>Calls holding a slot now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <inheritdoc />
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await base.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await foreach (var update in base.GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false))
                yield return update;
        }
        finally
        {
            Exit();
        }
    }

    private async Task EnterAsync(CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _inFlight);
        ModelCallTelemetry.InFlight.Add(1);
    }

    private void Exit()
    {
        Interlocked.Decrement(ref _inFlight);
        ModelCallTelemetry.InFlight.Add(-1);
        _slots.Release();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) _slots.Dispose();
        base.Dispose(disposing);
    }
}
