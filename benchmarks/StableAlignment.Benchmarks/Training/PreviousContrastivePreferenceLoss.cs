using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Benchmarks.Training;

// The loss as it was before the fused-output-layer work (commit 319512a), kept here only as the benchmarks' baseline:
// TorchSharp-operation row work in 16 MB chunks and a fresh [N, T, V] gradient in the backward pass.

/// <summary>The previous <c>ContrastivePreferenceLoss.Compute</c> (benchmark baseline).</summary>
internal sealed class PreviousContrastivePreferenceLoss(ContrastivePreferenceOptions options)
{
    private readonly ContrastivePreferenceOptions _options = options.Validate();

    /// <summary>The previous Compute, verbatim but for names.</summary>
    public PreferenceLossResult Compute(Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor? lossMask = null)
    {
        var inputs = PreferenceInputs.Create(logits, targets, groups, ratings, lossMask, _options);
        var device = logits.device;
        var accType = PreviousTokenNllFunction.AccumulationType(logits.dtype);
        int n = inputs.Responses, tLen = inputs.Tokens, gCount = inputs.GroupCount;

        using var scope = torch.NewDisposeScope();

        // Token weights fold the mask and the length normalisation together: NLL_i = sum_t w[i,t] * tokNLL[i,t].
        var weights = new double[n * tLen];
        var safeTargets = new long[n * tLen];
        for (int i = 0; i < n; i++)
        {
            double w = _options.LengthNormalization == LengthNormalization.TokenMean ? 1.0 / inputs.Lengths[i] : 1.0;
            for (int j = 0; j < tLen; j++)
            {
                int k = i * tLen + j;
                // Masked positions may hold the ignore index; point them at token 0, their weight is 0 anyway.
                safeTargets[k] = inputs.TokenMask[k] ? inputs.TargetIds[k] : 0;
                weights[k] = inputs.TokenMask[k] ? w : 0.0;
            }
        }

        var tokenNll = PreviousTokenNllFunction.Apply(
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
            margins[i] = inputs.MarginOf(i, _options);
        }

        var sft = torch.tensor(bestAverage, device: device).to(accType).view(gCount, n).matmul(responseNll);
        var groupIndex = torch.tensor(inputs.GroupOf, device: device);
        var d = sft.index_select(0, groupIndex) - responseNll + torch.tensor(margins, device: device).to(accType);
        var otherMatrix = torch.tensor(otherAverage, device: device).to(accType).view(gCount, n);
        Tensor rank = _options.Reduction switch
        {
            RankingReduction.HingeOfMean => otherMatrix.matmul(d).relu(),
            RankingReduction.MeanOfHinges => otherMatrix.matmul(d.relu()),
            RankingReduction.HingeOfMax => HingeOfMax(d, torch.tensor(isOther, device: device).view(gCount, n), inputs),
            _ => throw new InvalidOperationException($"Unhandled reduction {_options.Reduction}."),
        };

        var loss = _options.SftOnly ? sft.mean() : (sft + _options.RankingWeight * rank).mean();

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

/// <summary>The previous token-NLL autograd function (benchmark baseline).</summary>
internal sealed class PreviousTokenNllFunction : torch.autograd.SingleTensorFunction<PreviousTokenNllFunction>
{
    // Elements per chunk: 4M floats (16 MB) keeps temporaries small while each op stays large enough to thread well.
    private const long ChunkElements = 4L << 20;

    public override string Name => "PreviousStableAlignmentTokenNll";

    /// <summary>Computes the token NLLs of <paramref name="logits"/> <c>[R, V]</c> at <paramref name="targets"/> <c>[R]</c>.</summary>
    /// <returns>A <c>[R]</c> tensor in the accumulation type (float64 for float64 logits, float32 otherwise).</returns>
    public static Tensor Apply(Tensor logits, Tensor targets) => apply(logits, targets);

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var logits = (Tensor)vars[0];
        var targets = (Tensor)vars[1];
        long rows = logits.shape[0];
        var accType = AccumulationType(logits.dtype);
        var lse = torch.empty(rows, dtype: accType, device: logits.device);
        var nll = torch.empty(rows, dtype: accType, device: logits.device);
        ForEachChunk(logits, targets, accType, (r0, len, x, t) =>
        {
            var chunkLse = x.logsumexp(1);
            lse.narrow(0, r0, len).copy_(chunkLse);
            nll.narrow(0, r0, len).copy_(chunkLse - x.gather(1, t).squeeze(1));
        });
        ctx.save_for_backward([logits, targets, lse]);
        return nll;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        Tensor logits = saved[0], targets = saved[1], lse = saved[2];
        var accType = lse.dtype;
        var grad = torch.empty_like(logits);
        ForEachChunk(logits, targets, accType, (r0, len, x, t) =>
        {
            var g = gradOutput.narrow(0, r0, len).to(accType).unsqueeze(1);
            // softmax recomputed from the saved log-sum-exp, minus the one-hot target, scaled by the incoming gradient.
            var p = (x - lse.narrow(0, r0, len).unsqueeze(1)).exp_();
            p.scatter_add_(1, t, torch.full(len, 1, -1.0, dtype: accType, device: p.device));
            p.mul_(g);
            grad.narrow(0, r0, len).copy_(p);
        });
        foreach (var s in saved) s.Dispose();
        return [grad, null!];
    }

    internal static ScalarType AccumulationType(ScalarType logitsType) =>
        logitsType == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    /// <summary>
    /// Calls <paramref name="body"/> for consecutive row chunks with (first row, row count, the chunk's logits in the
    /// accumulation type, its targets as a column), inside a dispose scope so each chunk's temporaries are freed at once.
    /// </summary>
    private static void ForEachChunk(Tensor logits, Tensor targets, ScalarType accType, Action<long, long, Tensor, Tensor> body)
    {
        long rows = logits.shape[0];
        long chunk = Math.Max(1, ChunkElements / Math.Max(1, logits.shape[1]));
        for (long r0 = 0; r0 < rows; r0 += chunk)
        {
            using var scope = torch.NewDisposeScope();
            long len = Math.Min(chunk, rows - r0);
            body(r0, len, logits.narrow(0, r0, len).to(accType), targets.narrow(0, r0, len).unsqueeze(1));
        }
    }
}
