using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace StableAlignment.Core.ModelCalls;

/// <summary>
/// Charges every completed call's tokens (the provider's usage, or an estimate of four characters a token) to a
/// <see cref="ModelCalls.TokenBudget"/>, which <c>GetService&lt;TokenBudget&gt;()</c> returns. Calls are never
/// refused; see <see cref="ModelCalls.TokenBudget"/>.
/// </summary>
public sealed class TokenBudgetChatClient : DelegatingChatClient
{
    /// <summary>Creates the client.</summary>
    /// <param name="innerClient">The client to call.</param>
    /// <param name="budget">The budget to charge; it may be shared by several pipelines.</param>
    public TokenBudgetChatClient(IChatClient innerClient, TokenBudget budget) : base(innerClient) =>
        Budget = budget ?? throw new ArgumentNullException(nameof(budget));

    /// <summary>The budget charged.</summary>
    public TokenBudget Budget { get; }

    /// <inheritdoc />
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var list = messages as IList<ChatMessage> ?? [.. messages];
        var response = await base.GetResponseAsync(list, options, cancellationToken).ConfigureAwait(false);
        Charge(list, response);
        return response;
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = messages as IList<ChatMessage> ?? [.. messages];
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in base.GetStreamingResponseAsync(list, options, cancellationToken).ConfigureAwait(false))
        {
            updates.Add(update);
            yield return update;
        }
        Charge(list, updates.ToChatResponse());
    }

    private void Charge(IList<ChatMessage> messages, ChatResponse response)
    {
        var (tokensIn, tokensOut) = TokenCounts.Of(messages, response);
        Budget.Charge(tokensIn, tokensOut);
        ModelCallTelemetry.TokensIn.Add(tokensIn);
        ModelCallTelemetry.TokensOut.Add(tokensOut);
    }

    /// <inheritdoc />
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is null && serviceType == typeof(TokenBudget) ? Budget : base.GetService(serviceType, serviceKey);
    }
}
