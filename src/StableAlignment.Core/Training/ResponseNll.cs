using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// Per-response negative log-likelihoods from validated loss inputs, for the baseline objectives (DPO, RRHF) and the
/// reference model: token NLLs through <see cref="TokenNllFunction"/>, reduced over each response's unmasked tokens.
/// </summary>
internal static class ResponseNll
{
    /// <summary>Token NLLs <c>[N * T]</c> in the accumulation type; masked positions point at token 0 and must get weight 0.</summary>
    public static Tensor Tokens(Tensor logits, PreferenceInputs inputs)
    {
        var safeTargets = new long[inputs.Responses * inputs.Tokens];
        for (int k = 0; k < safeTargets.Length; k++) safeTargets[k] = inputs.TokenMask[k] ? inputs.TargetIds[k] : 0;
        return TokenNllFunction.Apply(logits.reshape(inputs.Responses * (long)inputs.Tokens, inputs.Vocabulary), tensor(safeTargets, device: logits.device), TokenNllFunction.Settings.TorchOps);
    }

    /// <summary>Each response's NLL <c>[N]</c>: the sum, or the mean, of its unmasked token NLLs.</summary>
    public static Tensor Reduce(Tensor tokenNll, PreferenceInputs inputs, LengthNormalization normalization)
    {
        int n = inputs.Responses, t = inputs.Tokens;
        var weights = new double[n * t];
        for (int i = 0; i < n; i++)
        {
            double w = normalization == LengthNormalization.TokenMean ? 1.0 / inputs.Lengths[i] : 1.0;
            for (int j = 0; j < t; j++) weights[i * t + j] = inputs.TokenMask[i * t + j] ? w : 0.0;
        }
        return (tokenNll.view(n, t) * tensor(weights, device: tokenNll.device).to(tokenNll.dtype).view(n, t)).sum(1);
    }

    /// <summary>The <c>[G, N]</c> matrix that averages the best-rated responses of each group (ties share the weight).</summary>
    public static Tensor BestAverage(PreferenceInputs inputs, Device device, ScalarType type)
    {
        int n = inputs.Responses, g = inputs.GroupCount;
        var average = new double[g * n];
        for (int i = 0; i < n; i++)
        {
            if (inputs.IsBest[i]) average[inputs.GroupOf[i] * n + i] = 1.0 / inputs.BestCount[inputs.GroupOf[i]];
        }
        return tensor(average, device: device).to(type).view(g, n);
    }

    /// <summary>The result every preference loss returns, from its loss, response NLLs and group terms (moved out of the caller's scope).</summary>
    public static PreferenceLossResult Result(PreferenceInputs inputs, Tensor loss, Tensor responseNll, Tensor sft, Tensor rank)
    {
        double[] nllHost;
        using (var host = responseNll.detach().to(ScalarType.Float64, CPU))
            nllHost = host.data<double>().ToArray();
        return new PreferenceLossResult(loss.MoveToOuterDisposeScope(), responseNll.MoveToOuterDisposeScope(), sft.MoveToOuterDisposeScope(),
            rank.MoveToOuterDisposeScope(), inputs.BestHasLowestNll(nllHost));
    }
}
