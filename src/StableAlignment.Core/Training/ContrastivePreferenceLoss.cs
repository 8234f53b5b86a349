using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// The Stable Alignment contrastive preference objective (spec §4), batched over many queries, on TorchSharp.
/// This is the reference path: it runs on any device TorchSharp supports and is what the CUDA kernels are checked against.
/// </summary>
/// <remarks>
/// <para>For each group (query) <c>g</c> with responses <c>i</c> rated <c>r_i</c>:</para>
/// <list type="bullet">
/// <item><c>NLL_i</c> is the token mean (or sum) of the response's negative log-likelihood over its unmasked tokens,
/// computed through log-sum-exp so that no finite input yields NaN or infinity.</item>
/// <item>The best set <c>B_g</c> holds every response that has the group's top rating. Ties for best are all best:
/// the SFT term is their mean NLL, and they are not ranked against each other.</item>
/// <item>For every other response <c>i</c>: <c>d_i = SFT_g - NLL_i + M (r_best - r_i) / scale</c>, with each response's
/// own rating. (The Python reference indexes sorted ratings by original position; for ratings [3, 7, 5] it gives the
/// 5-rated response the 3-rated one's margin.)</item>
/// <item>The ranking term reduces the <c>d_i</c> as <see cref="ContrastivePreferenceOptions.Reduction"/> says; it is 0
/// for a group with no lower-rated response (a single response, or all tied).</item>
/// <item>Loss = mean over groups of <c>SFT_g + lambda * rank_g</c> (or of <c>SFT_g</c> alone in SFT-only mode).</item>
/// </list>
/// </remarks>
public sealed class ContrastivePreferenceLoss : IPreferenceLoss
{
    /// <summary>Creates the loss; the options are validated here.</summary>
    /// <param name="options">The objective's options; <see langword="null"/> for the defaults.</param>
    public ContrastivePreferenceLoss(ContrastivePreferenceOptions? options = null) =>
        Options = (options ?? new ContrastivePreferenceOptions()).Validate();

    /// <inheritdoc />
    public ContrastivePreferenceOptions Options { get; }

    /// <inheritdoc />
    public PreferenceLossResult Compute(Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor? lossMask = null)
    {
        var inputs = PreferenceInputs.Create(logits, targets, groups, ratings, lossMask, Options);
        var device = logits.device;
        var accType = TokenNllFunction.AccumulationType(logits.dtype);
        int n = inputs.Responses, tLen = inputs.Tokens, gCount = inputs.GroupCount;

        using var scope = torch.NewDisposeScope();

        // Token weights fold the mask and the length normalisation together: NLL_i = sum_t w[i,t] * tokNLL[i,t].
        var weights = new double[n * tLen];
        var safeTargets = new long[n * tLen];
        for (int i = 0; i < n; i++)
        {
            double w = Options.LengthNormalization == LengthNormalization.TokenMean ? 1.0 / inputs.Lengths[i] : 1.0;
            for (int j = 0; j < tLen; j++)
            {
                int k = i * tLen + j;
                // Masked positions may hold the ignore index; point them at token 0, their weight is 0 anyway.
                safeTargets[k] = inputs.TokenMask[k] ? inputs.TargetIds[k] : 0;
                weights[k] = inputs.TokenMask[k] ? w : 0.0;
            }
        }

        var tokenNll = TokenNllFunction.Apply(
            logits.reshape(n * (long)tLen, inputs.Vocabulary),
            torch.tensor(safeTargets, device: device));
        var responseNll = (tokenNll.view(n, tLen) * torch.tensor(weights, device: device).to(accType).view(n, tLen)).sum(1);

        // Dense [G, N] averaging matrices: G and N are small, and a matmul keeps the reduction differentiable in one op.
        var bestAverage = new double[gCount * n];
        var otherAverage = new double[gCount * n];
        var isOther = new bool[gCount * n];
        var margins = new double[n];
        for (int i = 0; i < n; i++)
        {
            int g = (int)inputs.GroupOf[i];
            if (inputs.IsBest[i])
            {
                bestAverage[g * n + i] = 1.0 / inputs.BestCount[g];
            }
            else
            {
                otherAverage[g * n + i] = 1.0 / inputs.OtherCount[g];
                isOther[g * n + i] = true;
            }
            margins[i] = inputs.MarginOf(i, Options);
        }

        var sft = torch.tensor(bestAverage, device: device).to(accType).view(gCount, n).matmul(responseNll);
        var groupIndex = torch.tensor(inputs.GroupOf, device: device);
        var d = sft.index_select(0, groupIndex) - responseNll + torch.tensor(margins, device: device).to(accType);
        var otherMatrix = torch.tensor(otherAverage, device: device).to(accType).view(gCount, n);
        Tensor rank = Options.Reduction switch
        {
            RankingReduction.HingeOfMean => otherMatrix.matmul(d).relu(),
            RankingReduction.MeanOfHinges => otherMatrix.matmul(d.relu()),
            RankingReduction.HingeOfMax => HingeOfMax(d, torch.tensor(isOther, device: device).view(gCount, n), inputs),
            _ => throw new InvalidOperationException($"Unhandled reduction {Options.Reduction}."),
        };

        var loss = Options.SftOnly ? sft.mean() : (sft + Options.RankingWeight * rank).mean();

        double[] nllHost;
        using (var host = responseNll.detach().to(ScalarType.Float64, CPU))
            nllHost = host.data<double>().ToArray();

        return new PreferenceLossResult(
            loss.MoveToOuterDisposeScope(),
            responseNll.MoveToOuterDisposeScope(),
            sft.MoveToOuterDisposeScope(),
            rank.MoveToOuterDisposeScope(),
            inputs.BestHasLowestNll(nllHost));
    }

    private static Tensor HingeOfMax(Tensor d, Tensor isOther, PreferenceInputs inputs)
    {
        int gCount = inputs.GroupCount, n = inputs.Responses;
        var masked = d.unsqueeze(0).expand(gCount, n).masked_fill(isOther.logical_not(), double.NegativeInfinity);
        var max = masked.max(1).values;
        var hasOther = torch.tensor(Array.ConvertAll(inputs.OtherCount, c => c > 0), device: d.device);
        // Groups without lower-rated responses have max = -inf; they contribute exactly 0, with zero gradient.
        return torch.where(hasOther, max, torch.zeros_like(max)).relu();
    }
}
