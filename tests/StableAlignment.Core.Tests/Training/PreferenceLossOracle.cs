using StableAlignment.Core.Training;

namespace StableAlignment.Core.Tests.Training;

/// <summary>One loss input in plain arrays: logits [N,T,V] row-major, and the rest per response or token.</summary>
internal sealed record LossCase(int N, int T, int V, double[] Logits, long[] Targets, bool[] Mask, long[] Groups, double[] Ratings)
{
    public int GroupCount => (int)Groups.Max() + 1;

    public override string ToString() =>
        $"N={N} T={T} V={V} groups=[{string.Join(",", Groups)}] ratings=[{string.Join(",", Ratings)}] masked={Mask.Count(m => !m)}";
}

/// <summary>What the oracle computes: everything in float64, with the analytic gradient of the loss.</summary>
internal sealed record OracleResult(double Loss, double[] Nll, double[] Sft, double[] Rank, double[] GradLogits, bool?[] BestHasLowestNll);

/// <summary>
/// An independent float64 implementation of spec §4 with plain loops and an analytic gradient. It shares no
/// code with the library: it is the yardstick the TorchSharp path (and the CUDA kernels) are measured against.
/// </summary>
internal static class PreferenceLossOracle
{
    public static OracleResult Compute(LossCase c, ContrastivePreferenceOptions o)
    {
        int n = c.N, t = c.T, v = c.V, gCount = c.GroupCount;
        var tok = new double[n * t];
        var softmax = new double[n * t * v];
        var len = new int[n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < t; j++)
            {
                int row = (i * t + j) * v;
                double max = double.NegativeInfinity;
                for (int k = 0; k < v; k++) max = Math.Max(max, c.Logits[row + k]);
                double sum = 0;
                for (int k = 0; k < v; k++) sum += Math.Exp(c.Logits[row + k] - max);
                double lse = max + Math.Log(sum);
                for (int k = 0; k < v; k++) softmax[row + k] = Math.Exp(c.Logits[row + k] - lse);
                if (c.Mask[i * t + j])
                {
                    tok[i * t + j] = lse - c.Logits[row + c.Targets[i * t + j]];
                    len[i]++;
                }
            }
        }

        var weight = new double[n];
        var nll = new double[n];
        for (int i = 0; i < n; i++)
        {
            weight[i] = o.LengthNormalization == LengthNormalization.TokenMean ? 1.0 / len[i] : 1.0;
            for (int j = 0; j < t; j++)
                if (c.Mask[i * t + j]) nll[i] += weight[i] * tok[i * t + j];
        }

        var sft = new double[gCount];
        var rank = new double[gCount];
        var coeff = new double[n];
        var correct = new bool?[gCount];
        for (int g = 0; g < gCount; g++)
        {
            var members = Enumerable.Range(0, n).Where(i => c.Groups[i] == g).ToArray();
            double top = members.Max(i => c.Ratings[i]);
            var best = members.Where(i => c.Ratings[i] == top).ToArray();
            var others = members.Where(i => c.Ratings[i] != top).ToArray();
            sft[g] = best.Average(i => nll[i]);

            // dRank/dd_i for each lower-rated response.
            var dRank = new double[others.Length];
            if (others.Length > 0)
            {
                var d = others.Select(i => sft[g] - nll[i] + o.Margin * (top - c.Ratings[i]) / o.RatingScale).ToArray();
                switch (o.Reduction)
                {
                    case RankingReduction.HingeOfMean:
                        rank[g] = Math.Max(0, d.Average());
                        if (d.Average() > 0) Array.Fill(dRank, 1.0 / d.Length);
                        break;
                    case RankingReduction.MeanOfHinges:
                        rank[g] = d.Select(x => Math.Max(0, x)).Average();
                        for (int k = 0; k < d.Length; k++) dRank[k] = d[k] > 0 ? 1.0 / d.Length : 0;
                        break;
                    case RankingReduction.HingeOfMax:
                        int arg = Array.IndexOf(d, d.Max());
                        rank[g] = Math.Max(0, d[arg]);
                        if (d[arg] > 0) dRank[arg] = 1;
                        break;
                }
                correct[g] = best.Min(i => nll[i]) < others.Min(i => nll[i]);
            }

            double rankWeight = o.SftOnly ? 0 : o.RankingWeight;
            foreach (int b in best) coeff[b] += 1.0 / best.Length / gCount;
            for (int k = 0; k < others.Length; k++)
            {
                // d_i = SFT_g - NLL_i + margin: it pulls on every best response through SFT_g and pushes on NLL_i.
                foreach (int b in best) coeff[b] += rankWeight * dRank[k] / best.Length / gCount;
                coeff[others[k]] -= rankWeight * dRank[k] / gCount;
            }
        }

        double loss = Enumerable.Range(0, gCount).Average(g => sft[g] + (o.SftOnly ? 0 : o.RankingWeight * rank[g]));

        var grad = new double[n * t * v];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < t; j++)
            {
                if (!c.Mask[i * t + j]) continue;
                int row = (i * t + j) * v;
                for (int k = 0; k < v; k++)
                {
                    double onehot = k == c.Targets[i * t + j] ? 1 : 0;
                    grad[row + k] = coeff[i] * weight[i] * (softmax[row + k] - onehot);
                }
            }
        }
        return new OracleResult(loss, nll, sft, rank, grad, correct);
    }
}
