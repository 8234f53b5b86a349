using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace StableAlignment.Core.Tests.TestSupport;

/// <summary>
/// A chat client that answers through a function (scripted replies, malformed replies, faults) and records what it
/// was sent. Safe for concurrent calls: the sandbox calls it from several workers.
/// </summary>
/// <param name="reply">Gets the messages, the options and the 1-based call number; returns the reply text.</param>
internal sealed class ScriptedChatClient(Func<IReadOnlyList<ChatMessage>, ChatOptions?, int, string> reply) : IChatClient
{
    private readonly List<IReadOnlyList<ChatMessage>> _sent = [];

    /// <summary>A client whose reply depends on the messages only.</summary>
    public ScriptedChatClient(Func<IReadOnlyList<ChatMessage>, string> reply)
        : this((messages, _, _) => reply(messages))
    {
    }

    /// <summary>Calls made so far.</summary>
    public int Calls
    {
        get
        {
            lock (_sent) return _sent.Count;
        }
    }

    /// <summary>The messages of every call, in call order.</summary>
    public IReadOnlyList<IReadOnlyList<ChatMessage>> Sent
    {
        get
        {
            lock (_sent) return [.. _sent];
        }
    }

    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<ChatMessage> list = [.. messages];
        int call;
        lock (_sent)
        {
            _sent.Add(list);
            call = _sent.Count;
        }
        return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, reply(list, options, call)))
        {
            Usage = new UsageDetails { InputTokenCount = 10, OutputTokenCount = 5 },
        });
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var response = await GetResponseAsync(messages, options, cancellationToken);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }
}
