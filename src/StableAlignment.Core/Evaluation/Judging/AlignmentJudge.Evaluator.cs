using Microsoft.Extensions.AI;
using Microsoft.Extensions.AI.Evaluation;

namespace StableAlignment.Core.Evaluation;

/// <summary>
/// The judge as an <see cref="IEvaluator"/> of Microsoft.Extensions.AI.Evaluation, so it composes with that library's
/// evaluators, reporting and caching: the request is the last user message, the answer the model's response, and the
/// framed request (HH-A) an <see cref="EvaluationContext"/> named <see cref="AlignmentMetric.FramedRequestContextName"/>.
/// The result holds one <see cref="NumericMetric"/>, <see cref="AlignmentMetric.Name"/>, on 1-10; a rating that failed
/// has no value and an error diagnostic. The judge's own client is used, not <see cref="ChatConfiguration"/>'s.
/// </summary>
public sealed partial class AlignmentJudge : IEvaluator
{
    /// <inheritdoc />
    public IReadOnlyCollection<string> EvaluationMetricNames { get; } = [AlignmentMetric.Name];

    /// <inheritdoc />
    public async ValueTask<EvaluationResult> EvaluateAsync(IEnumerable<ChatMessage> messages, ChatResponse modelResponse,
        ChatConfiguration? chatConfiguration = null, IEnumerable<EvaluationContext>? additionalContext = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(modelResponse);
        var rating = await RateAsync(AlignmentMetric.RequestOf(messages), modelResponse.Text ?? "", AlignmentMetric.FramedRequestOf(additionalContext),
            cancellationToken).ConfigureAwait(false);
        var metric = AlignmentMetric.Create(rating.Score, rating.Succeeded ? rating.Reason : $"The judge gave no rating: {rating.FailureReason}");
        metric.AddOrUpdateMetadata("attempts", rating.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return new EvaluationResult(metric);
    }
}
