using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>Options of <see cref="DpoLoss"/> (DPO).</summary>
public sealed record DpoOptions
{
    /// <summary>The inverse temperature <c>beta</c> of the implicit reward. Default 0.1 (the DPO paper's and TRL's).</summary>
    public double Beta { get; init; } = 0.1;

    /// <summary>Checks the options and throws an <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public DpoOptions Validate()
    {
        if (!double.IsFinite(Beta) || Beta <= 0)
            throw new ArgumentException($"Beta must be a positive finite number, got {Beta}.", nameof(Beta));
        return this;
    }
}

/// <summary>
/// Direct Preference Optimization (Rafailov et al. 2023) over the same grouped batches as the contrastive loss: every
/// pair of a best-rated response <c>w</c> and a lower-rated response <c>l</c> of one query contributes
/// <c>-log sigmoid(beta ((log pi(w) - log pi_ref(w)) - (log pi(l) - log pi_ref(l))))</c>, where <c>log pi</c> is the
/// response's summed token log-probability under the model being trained and <c>log pi_ref</c> under the frozen reference.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Loss = the mean over every such pair in the batch, as TRL's <c>DPOTrainer</c> averages over its pairs. Several
/// responses tied for best each pair with every lower-rated one; groups with no lower-rated response add no pair; a
/// batch without pairs has loss 0 (with a zero gradient).</item>
/// <item><see cref="PreferenceLossResult.RankingTerms"/> is each group's mean pair loss (0 without pairs);
/// <see cref="PreferenceLossResult.SftTerms"/> the NLL of its best response(s), reported only (DPO has no SFT term);
/// <see cref="PreferenceLossResult.ResponseNll"/> follows <see cref="ContrastivePreferenceOptions.LengthNormalization"/>,
/// so ranking accuracy means what it means for the contrastive loss.</item>
/// <item>Inputs are validated by the contrastive loss's rules (<see cref="ContrastivePreferenceLoss"/>: shapes, rating
/// scale, ignore index, masks), and the reference NLLs must be one finite value per response.</item>
/// </list>
/// </remarks>
public sealed class DpoLoss : IReferencePreferenceLoss
{
    /// <summary>Creates the loss.</summary>
    /// <param name="options">DPO's options; defaults (beta 0.1) when null.</param>
    /// <param name="inputs">The rules inputs are checked by (rating scale, ignore index) and the normalisation of the
    /// reported NLLs; defaults when null. Margin, ranking weight, reduction and SFT-only are not used.</param>
    public DpoLoss(DpoOptions? options = null, ContrastivePreferenceOptions? inputs = null)
    {
        Dpo = (options ?? new DpoOptions()).Validate();
        Options = (inputs ?? new ContrastivePreferenceOptions()).Validate();
    }

    /// <summary>DPO's options.</summary>
    public DpoOptions Dpo { get; }

    /// <inheritdoc />
    public ContrastivePreferenceOptions Options { get; }

    /// <summary>Always throws: DPO needs the reference model's NLLs (use <see cref="ComputeWithReference"/>).</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public PreferenceLossResult Compute(Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor? lossMask = null) =>
        throw new InvalidOperationException(
            "DpoLoss needs each response's NLL under the reference model: call ComputeWithReference, " +
            "or train a TrainingStage with Objective Dpo and a Reference.");

    /// <inheritdoc />
    public PreferenceLossResult ComputeWithReference(Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor referenceNll, Tensor? lossMask = null)
    {
        var inputs = PreferenceInputs.Create(logits, targets, groups, ratings, lossMask, Options);
        double[] reference = ReferenceValues(referenceNll, inputs.Responses);
        int n = inputs.Responses, gCount = inputs.GroupCount;
        var device = logits.device;

        using var scope = torch.NewDisposeScope();
        var tokenNll = ResponseNll.Tokens(logits, inputs);
        var accType = tokenNll.dtype;
        var sum = ResponseNll.Reduce(tokenNll, inputs, LengthNormalization.Sum);
        var reported = Options.LengthNormalization == LengthNormalization.Sum ? sum : ResponseNll.Reduce(tokenNll, inputs, LengthNormalization.TokenMean);

        // Pairs (best w, lower l) of each group; the reference part of each pair's logit is a constant.
        var winners = new List<long>();
        var losers = new List<long>();
        var referenceMargin = new List<double>();
        var pairGroup = new List<long>();
        for (int w = 0; w < n; w++)
        {
            if (!inputs.IsBest[w]) continue;
            for (int l = 0; l < n; l++)
            {
                if (inputs.IsBest[l] || inputs.GroupOf[l] != inputs.GroupOf[w]) continue;
                winners.Add(w);
                losers.Add(l);
                referenceMargin.Add(reference[l] - reference[w]);
                pairGroup.Add(inputs.GroupOf[w]);
            }
        }

        Tensor loss, rank;
        if (winners.Count == 0)
        {
            loss = sum.sum().mul(HeldScalars.Zero);
            rank = torch.zeros(gCount, dtype: accType, device: device);
        }
        else
        {
            // log pi = -NLL_sum, so the implicit reward margin is beta ((NLL_l - NLL_w) - (ref_l - ref_w)).
            var policyMargin = sum.index_select(0, torch.tensor(losers.ToArray(), device: device)) - sum.index_select(0, torch.tensor(winners.ToArray(), device: device));
            using var beta = Dpo.Beta.ToScalar();
            var z = (policyMargin - torch.tensor(referenceMargin.ToArray(), device: device).to(accType)).mul(beta);
            var pairLoss = torch.nn.functional.softplus(-z);
            loss = pairLoss.mean();
            var pairsOf = new int[gCount];
            foreach (long g in pairGroup) pairsOf[g]++;
            var average = new double[gCount * winners.Count];
            for (int p = 0; p < winners.Count; p++) average[pairGroup[p] * winners.Count + p] = 1.0 / pairsOf[pairGroup[p]];
            rank = torch.tensor(average, device: device).to(accType).view(gCount, winners.Count).matmul(pairLoss);
        }
        var sft = ResponseNll.BestAverage(inputs, device, accType).matmul(reported);
        return ResponseNll.Result(inputs, loss, reported, sft, rank);
    }

    private static double[] ReferenceValues(Tensor referenceNll, int n)
    {
        ArgumentNullException.ThrowIfNull(referenceNll);
        if (referenceNll.dim() != 1 || referenceNll.shape[0] != n)
            throw new ArgumentException($"referenceNll must have shape [{n}] (one reference NLL per response), got [{string.Join(", ", referenceNll.shape)}].", nameof(referenceNll));
        using var host = referenceNll.detach().to(ScalarType.Float64, CPU).contiguous();
        var values = host.data<double>().ToArray();
        for (int i = 0; i < n; i++)
        {
            if (!double.IsFinite(values[i]))
                throw new ArgumentException($"referenceNll[{i}] is {values[i]}; every reference NLL must be finite.", nameof(referenceNll));
        }
        return values;
    }
}
