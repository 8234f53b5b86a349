using Microsoft.Extensions.AI;

namespace StableAlignment.Core.ModelCalls;

/// <summary>The tokens a call used: the provider's usage when it reports one, else an estimate.</summary>
internal static class TokenCounts
{
    /// <summary>(prompt tokens, completion tokens) of a call.</summary>
    public static (long In, long Out) Of(IEnumerable<ChatMessage> messages, ChatResponse response) =>
        (response.Usage?.InputTokenCount ?? Estimate(messages.Sum(m => m.Text.Length)),
         response.Usage?.OutputTokenCount ?? Estimate(response.Text.Length));

    // Providers without usage data still count against a budget, roughly (4 characters a token).
    private static long Estimate(int characters) => (characters + 3) / 4;
}
