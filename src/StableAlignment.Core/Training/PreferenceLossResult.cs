using TorchSharp;

namespace StableAlignment.Core.Training;

/// <summary>
/// What one evaluation of the contrastive preference loss produces. Tensors live on the logits' device;
/// the ranking reductions are plain host values, cheap to log.
/// </summary>
public sealed class PreferenceLossResult : IDisposable
{
    internal PreferenceLossResult(
        torch.Tensor loss,
        torch.Tensor responseNll,
        torch.Tensor sftTerms,
        torch.Tensor rankingTerms,
        IReadOnlyList<bool?> bestHasLowestNll)
    {
        Loss = loss;
        ResponseNll = responseNll;
        SftTerms = sftTerms;
        RankingTerms = rankingTerms;
        BestHasLowestNll = bestHasLowestNll;
        foreach (var b in bestHasLowestNll)
        {
            if (b is bool correct)
            {
                RankableGroups++;
                if (correct) CorrectGroups++;
            }
        }
    }

    /// <summary>
    /// The scalar loss: the mean over groups of <c>SFT_g + lambda * rank_g</c> (or of <c>SFT_g</c> alone in SFT-only mode).
    /// Differentiable with respect to the logits; float64 for float64 logits, float32 otherwise.
    /// </summary>
    public torch.Tensor Loss { get; }

    /// <summary>Each response's NLL <c>[N]</c> (token mean or sum, as the options say).</summary>
    public torch.Tensor ResponseNll { get; }

    /// <summary>Each group's SFT term <c>[G]</c>: the NLL of its best-rated response (mean over ties).</summary>
    public torch.Tensor SftTerms { get; }

    /// <summary>Each group's ranking term <c>[G]</c> before the weight lambda (0 for groups that cannot be ranked).</summary>
    public torch.Tensor RankingTerms { get; }

    /// <summary>
    /// Per group: whether a best-rated response has a strictly lower NLL than every lower-rated one, or
    /// <see langword="null"/> when the group has no lower-rated response (one response, or all ratings tied).
    /// </summary>
    public IReadOnlyList<bool?> BestHasLowestNll { get; }

    /// <summary>Number of groups that have at least one lower-rated response.</summary>
    public int RankableGroups { get; }

    /// <summary>Number of rankable groups whose best-rated response has the lowest NLL.</summary>
    public int CorrectGroups { get; }

    /// <summary>The batch's ranking accuracy, <see cref="CorrectGroups"/> / <see cref="RankableGroups"/>, or NaN when no group is rankable.</summary>
    public double RankingAccuracy => RankableGroups == 0 ? double.NaN : (double)CorrectGroups / RankableGroups;

    /// <inheritdoc />
    public void Dispose()
    {
        Loss.Dispose();
        ResponseNll.Dispose();
        SftTerms.Dispose();
        RankingTerms.Dispose();
    }
}
