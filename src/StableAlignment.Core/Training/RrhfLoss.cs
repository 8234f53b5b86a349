using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>Options of <see cref="RrhfLoss"/> (RRHF).</summary>
public sealed record RrhfOptions
{
    /// <summary>The weight of the ranking term against the SFT term. Default 1 (the RRHF paper's and code's).</summary>
    public double RankingWeight { get; init; } = 1.0;

    /// <summary>Checks the options and throws an <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public RrhfOptions Validate()
    {
        if (!double.IsFinite(RankingWeight) || RankingWeight < 0)
            throw new ArgumentException($"RankingWeight must be a non-negative finite number, got {RankingWeight}.", nameof(RankingWeight));
        return this;
    }
}

/// <summary>
/// RRHF, Rank Responses to align Human Feedback (Yuan et al. 2023), over the same grouped batches as the contrastive
/// loss: per query, a ranking hinge on length-normalised log-probabilities <c>p_i = -NLL_mean(y_i)</c> over every
/// ordered pair, <c>sum over r_i &lt; r_j of max(0, p_i - p_j)</c>, plus SFT on the best-rated response.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Loss = mean over groups of <c>SFT_g + w * rank_g</c>, with <c>SFT_g</c> the NLL of the best-rated response
/// (mean over ties; normalised as <see cref="ContrastivePreferenceOptions.LengthNormalization"/> says) and
/// <c>rank_g</c> the pair sum above (0 for a group without two different ratings).</item>
/// <item>Every ordered pair with different ratings counts, as the paper's equation has it. (The RRHF code indexes the
/// pair matrix with <c>[0]</c> and so keeps only the pairs of the first response.) Pairs that tie in rating are not
/// ranked.</item>
/// <item>Unlike the contrastive loss, the ranking has no rating margin and compares every pair, not only the best
/// against the others.</item>
/// <item>Inputs are validated by the contrastive loss's rules (<see cref="ContrastivePreferenceLoss"/>).</item>
/// </list>
/// </remarks>
public sealed class RrhfLoss : IPreferenceLoss
{
    /// <summary>Creates the loss.</summary>
    /// <param name="options">RRHF's options; defaults (ranking weight 1) when null.</param>
    /// <param name="inputs">The rules inputs are checked by (rating scale, ignore index) and the normalisation of the SFT
    /// term and the reported NLLs; defaults when null. Margin, ranking weight, reduction and SFT-only are not used.</param>
    public RrhfLoss(RrhfOptions? options = null, ContrastivePreferenceOptions? inputs = null)
    {
        Rrhf = (options ?? new RrhfOptions()).Validate();
        Options = (inputs ?? new ContrastivePreferenceOptions()).Validate();
    }

    /// <summary>RRHF's options.</summary>
    public RrhfOptions Rrhf { get; }

    /// <inheritdoc />
    public ContrastivePreferenceOptions Options { get; }

    /// <inheritdoc />
    public PreferenceLossResult Compute(Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor? lossMask = null)
    {
        var inputs = PreferenceInputs.Create(logits, targets, groups, ratings, lossMask, Options);
        int n = inputs.Responses, gCount = inputs.GroupCount;
        var device = logits.device;

        using var scope = torch.NewDisposeScope();
        var tokenNll = ResponseNll.Tokens(logits, inputs);
        var accType = tokenNll.dtype;
        var mean = ResponseNll.Reduce(tokenNll, inputs, LengthNormalization.TokenMean);
        var reported = Options.LengthNormalization == LengthNormalization.TokenMean ? mean : ResponseNll.Reduce(tokenNll, inputs, LengthNormalization.Sum);

        // Ordered pairs (lower i, higher j) of each group: hinge max(0, p_i - p_j) = max(0, NLL_j - NLL_i).
        var lower = new List<long>();
        var higher = new List<long>();
        var pairGroup = new List<long>();
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                if (inputs.GroupOf[i] != inputs.GroupOf[j] || !(inputs.Ratings[i] < inputs.Ratings[j])) continue;
                lower.Add(i);
                higher.Add(j);
                pairGroup.Add(inputs.GroupOf[i]);
            }
        }

        var sft = ResponseNll.BestAverage(inputs, device, accType).matmul(reported);
        Tensor rank;
        if (lower.Count == 0)
        {
            rank = torch.zeros(gCount, dtype: accType, device: device);
        }
        else
        {
            var hinge = (mean.index_select(0, torch.tensor(higher.ToArray(), device: device)) - mean.index_select(0, torch.tensor(lower.ToArray(), device: device))).relu();
            var sumOf = new double[gCount * lower.Count];
            for (int p = 0; p < lower.Count; p++) sumOf[pairGroup[p] * lower.Count + p] = 1.0;
            rank = torch.tensor(sumOf, device: device).to(accType).view(gCount, lower.Count).matmul(hinge);
        }
        using var rankingWeight = Rrhf.RankingWeight.ToScalar();
        var loss = sft.add(rank.mul(rankingWeight), HeldScalars.One).mean();
        return ResponseNll.Result(inputs, loss, reported, sft, rank);
    }
}
