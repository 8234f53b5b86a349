namespace StableAlignment.Core.Evaluation;

/// <summary>
/// A language model seen through the one question multiple-choice evaluation asks of it: how likely is a
/// continuation after a context?
/// </summary>
/// <remarks>
/// Implementations encode <c>context</c> and <c>context + continuation</c>, and return the summed log-probability
/// (natural log) of the tokens that the continuation adds, exactly as lm-evaluation-harness's
/// <c>loglikelihood</c> request does. The harness passes requests in batches of at most
/// <see cref="MultipleChoiceOptions.BatchSize"/>; results must be returned in request order, and a result must
/// not depend on which other requests share its batch.
/// </remarks>
public interface ILogLikelihoodScorer
{
    /// <summary>Scores a batch of requests.</summary>
    /// <param name="requests">The requests, in the order their results are expected.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <returns>One score per request, in the same order.</returns>
    ValueTask<IReadOnlyList<LikelihoodScore>> ScoreAsync(
        IReadOnlyList<LikelihoodRequest> requests, CancellationToken cancellationToken);
}

/// <summary>One log-likelihood request: score <see cref="Continuation"/> after <see cref="Context"/>.</summary>
/// <remarks>
/// Build requests with <see cref="Create"/>, which applies the harness's whitespace rule: trailing whitespace of
/// the context moves onto the front of the continuation, so that a tokenizer that merges a space with the
/// following word sees the same text either way.
/// </remarks>
/// <param name="Context">The conditioning text (may be empty).</param>
/// <param name="Continuation">The text whose log-probability is wanted (never empty).</param>
public readonly record struct LikelihoodRequest(string Context, string Continuation)
{
    /// <summary>
    /// Creates a request, moving the context's trailing whitespace onto the continuation
    /// (lm-evaluation-harness <c>_encode_pair</c>).
    /// </summary>
    /// <param name="context">The conditioning text.</param>
    /// <param name="continuation">The text to score; must not be empty.</param>
    /// <exception cref="ArgumentException">The continuation is empty.</exception>
    public static LikelihoodRequest Create(string context, string continuation)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(continuation);
        if (continuation.Length == 0)
        {
            throw new ArgumentException("A likelihood request needs a non-empty continuation.", nameof(continuation));
        }
        int end = context.Length;
        while (end > 0 && char.IsWhiteSpace(context[end - 1]))
        {
            end--;
        }
        return end == context.Length
            ? new LikelihoodRequest(context, continuation)
            : new LikelihoodRequest(context[..end], string.Concat(context.AsSpan(end), continuation));
    }
}

/// <summary>The scorer's answer to one <see cref="LikelihoodRequest"/>.</summary>
/// <param name="LogLikelihood">Summed natural-log probability of the continuation's tokens (normally at most 0; may be
/// negative infinity, never NaN).</param>
/// <param name="TokenCount">How many tokens the continuation had, when the scorer knows; kept in per-item
/// results for auditing.</param>
public readonly record struct LikelihoodScore(double LogLikelihood, int? TokenCount = null);
