using StableAlignment.Core.Training;

namespace StableAlignment.Core.Tests.Cuda;

/// <summary>
/// A float64 oracle of the contrastive preference loss and its gradient, written with plain loops straight
/// from the definition (independent of the kernels and of the TorchSharp reference).
/// </summary>
internal static class PreferenceLossOracle
{
    internal sealed record Result(double Loss, double[] Nll, double[] Sft, double[] Rank, bool?[] BestLowest, double[] Grad);

    public static Result Compute(
        double[] logits, int n, int t, int v, long[] targets, long[] groups, double[] ratings, bool[]? mask, ContrastivePreferenceOptions o)
    {
        bool Active(int row) => mask is null ? targets[row] != o.IgnoreIndex : mask[row];
        var tokNll = new double[n * t];
        var softmax = new double[(long)n * t * v];
        var nll = new double[n];
        var len = new int[n];
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < t; j++)
            {
                var row = i * t + j;
                if (!Active(row)) continue;
                var max = double.NegativeInfinity;
                for (var k = 0; k < v; k++) max = Math.Max(max, logits[(long)row * v + k]);
                var sum = 0.0;
                for (var k = 0; k < v; k++) sum += Math.Exp(logits[(long)row * v + k] - max);
                var lse = max + Math.Log(sum);
                for (var k = 0; k < v; k++) softmax[(long)row * v + k] = Math.Exp(logits[(long)row * v + k] - lse);
                tokNll[row] = lse - logits[(long)row * v + targets[row]];
                nll[i] += tokNll[row];
                len[i]++;
            }
            if (o.LengthNormalization == LengthNormalization.TokenMean) nll[i] /= len[i];
        }

        var g = (int)groups.Max() + 1;
        var sft = new double[g];
        var rank = new double[g];
        var bestLowest = new bool?[g];
        var coeff = new double[n];
        var w = o.SftOnly ? 0.0 : o.RankingWeight;
        var loss = 0.0;
        for (var q = 0; q < g; q++)
        {
            var members = Enumerable.Range(0, n).Where(i => groups[i] == q).ToArray();
            var best = members.Max(i => ratings[i]);
            var bestSet = members.Where(i => ratings[i] == best).ToArray();
            var others = members.Where(i => ratings[i] != best).ToArray();
            sft[q] = bestSet.Average(i => nll[i]);
            var d = others.Select(i => sft[q] - nll[i] + o.Margin * (best - ratings[i]) / o.RatingScale).ToArray();
            double dRankdSft = 0;
            var dRankdOther = new double[others.Length];
            if (others.Length > 0)
            {
                switch (o.Reduction)
                {
                    case RankingReduction.HingeOfMean:
                        rank[q] = Math.Max(0, d.Average());
                        if (d.Average() > 0)
                        {
                            dRankdSft = 1;
                            Array.Fill(dRankdOther, -1.0 / others.Length);
                        }
                        break;
                    case RankingReduction.MeanOfHinges:
                        rank[q] = d.Average(x => Math.Max(0, x));
                        for (var k = 0; k < d.Length; k++)
                        {
                            if (d[k] > 0)
                            {
                                dRankdSft += 1.0 / others.Length;
                                dRankdOther[k] = -1.0 / others.Length;
                            }
                        }
                        break;
                    default:
                        var arg = Array.IndexOf(d, d.Max()); // first in batch order
                        rank[q] = Math.Max(0, d[arg]);
                        if (d[arg] > 0)
                        {
                            dRankdSft = 1;
                            dRankdOther[arg] = -1;
                        }
                        break;
                }
                bestLowest[q] = bestSet.Min(i => nll[i]) < others.Min(i => nll[i]);
            }
            loss += sft[q] + w * rank[q];
            foreach (var b in bestSet) coeff[b] = (1 + w * dRankdSft) / bestSet.Length / g;
            for (var k = 0; k < others.Length; k++) coeff[others[k]] = w * dRankdOther[k] / g;
        }
        loss /= g;

        var grad = new double[(long)n * t * v];
        for (var i = 0; i < n; i++)
        {
            var scale = coeff[i] * (o.LengthNormalization == LengthNormalization.TokenMean ? 1.0 / len[i] : 1.0);
            for (var j = 0; j < t; j++)
            {
                var row = i * t + j;
                if (!Active(row)) continue;
                for (var k = 0; k < v; k++)
                    grad[(long)row * v + k] = scale * (softmax[(long)row * v + k] - (k == targets[row] ? 1 : 0));
            }
        }
        return new Result(loss, nll, sft, rank, bestLowest, grad);
    }
}
