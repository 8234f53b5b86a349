using StableAlignment.Core.Training;

namespace StableAlignment.Core.Tests.Training;

/// <summary>
/// Independent float64 implementations of DPO (Rafailov et al. 2023, eq. 7, over best-vs-lower pairs) and RRHF (Yuan et
/// al. 2023, eq. 2-4, over every ordered pair) with plain loops and analytic gradients. They share no code with the
/// library or with <see cref="PreferenceLossOracle"/>, which the GPU check compiles on its own (without the DPO and
/// RRHF options this file needs), so its log-softmax pass is written again here.
/// </summary>
internal static class BaselineLossOracle
{
    /// <summary>Per-token log-softmax pieces of a case: token NLL (0 off the mask), softmax, unmasked token count and summed NLL per response.</summary>
    private sealed record Tokens(double[] Nll, double[] Softmax, int[] Lengths, double[] Sum);

    private static Tokens TokensOf(LossCase c)
    {
        int n = c.N, t = c.T, v = c.V;
        var nll = new double[n * t];
        var softmax = new double[n * t * v];
        var lengths = new int[n];
        var sum = new double[n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < t; j++)
            {
                int row = (i * t + j) * v;
                double max = double.NegativeInfinity;
                for (int k = 0; k < v; k++) max = Math.Max(max, c.Logits[row + k]);
                double z = 0;
                for (int k = 0; k < v; k++) z += Math.Exp(c.Logits[row + k] - max);
                double lse = max + Math.Log(z);
                for (int k = 0; k < v; k++) softmax[row + k] = Math.Exp(c.Logits[row + k] - lse);
                if (!c.Mask[i * t + j]) continue;
                nll[i * t + j] = lse - c.Logits[row + c.Targets[i * t + j]];
                lengths[i]++;
                sum[i] += nll[i * t + j];
            }
        }
        return new Tokens(nll, softmax, lengths, sum);
    }

    /// <summary>d(loss)/d(logits) from d(loss)/d(summed NLL) of each response: coefficient times (softmax - onehot) on loss tokens.</summary>
    private static double[] Gradient(LossCase c, Tokens tok, double[] dSum)
    {
        var grad = new double[c.N * c.T * c.V];
        for (int i = 0; i < c.N; i++)
        {
            for (int j = 0; j < c.T; j++)
            {
                if (!c.Mask[i * c.T + j]) continue;
                int row = (i * c.T + j) * c.V;
                for (int k = 0; k < c.V; k++)
                    grad[row + k] = dSum[i] * (tok.Softmax[row + k] - (k == c.Targets[i * c.T + j] ? 1 : 0));
            }
        }
        return grad;
    }

    private static double Sigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));

    private static double Softplus(double x) => Math.Max(x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x)));

    private static (int[] Best, int[] Others, double Top) Split(LossCase c, int g)
    {
        var members = Enumerable.Range(0, c.N).Where(i => c.Groups[i] == g).ToArray();
        double top = members.Max(i => c.Ratings[i]);
        return (members.Where(i => c.Ratings[i] == top).ToArray(), members.Where(i => c.Ratings[i] != top).ToArray(), top);
    }

    private static double[] Reported(Tokens tok, LengthNormalization norm) =>
        [.. tok.Sum.Select((s, i) => norm == LengthNormalization.TokenMean ? s / tok.Lengths[i] : s)];

    public static OracleResult Dpo(LossCase c, double[] referenceNll, double beta, LengthNormalization norm)
    {
        var tok = TokensOf(c);
        int gCount = c.GroupCount;
        var reported = Reported(tok, norm);
        var pairs = new List<(int W, int L, int G)>();
        for (int g = 0; g < gCount; g++)
        {
            var (best, others, _) = Split(c, g);
            foreach (int w in best)
                foreach (int l in others) pairs.Add((w, l, g));
        }

        var rank = new double[gCount];
        var pairCount = new int[gCount];
        var dSum = new double[c.N];
        double loss = 0;
        foreach (var (w, l, g) in pairs)
        {
            // log pi(y) = -sum NLL; z = beta * [(log pi(w) - log ref(w)) - (log pi(l) - log ref(l))].
            double z = beta * ((-tok.Sum[w] + referenceNll[w]) - (-tok.Sum[l] + referenceNll[l]));
            double pairLoss = Softplus(-z);
            loss += pairLoss / pairs.Count;
            rank[g] += pairLoss;
            pairCount[g]++;
            // d softplus(-z)/dz = -sigmoid(-z); dz/dSum_w = -beta, dz/dSum_l = +beta.
            double dz = -Sigmoid(-z) / pairs.Count;
            dSum[w] += dz * -beta;
            dSum[l] += dz * beta;
        }
        for (int g = 0; g < gCount; g++) rank[g] = pairCount[g] == 0 ? 0 : rank[g] / pairCount[g];

        var sft = new double[gCount];
        var correct = new bool?[gCount];
        for (int g = 0; g < gCount; g++)
        {
            var (best, others, _) = Split(c, g);
            sft[g] = best.Average(i => reported[i]);
            correct[g] = others.Length == 0 ? null : best.Min(i => reported[i]) < others.Min(i => reported[i]);
        }
        return new OracleResult(loss, reported, sft, rank, Gradient(c, tok, dSum), correct);
    }

    public static OracleResult Rrhf(LossCase c, double weight, LengthNormalization norm)
    {
        var tok = TokensOf(c);
        int gCount = c.GroupCount;
        var reported = Reported(tok, norm);
        var mean = tok.Sum.Select((s, i) => s / tok.Lengths[i]).ToArray();
        var sft = new double[gCount];
        var rank = new double[gCount];
        var correct = new bool?[gCount];
        var dSum = new double[c.N];
        for (int g = 0; g < gCount; g++)
        {
            var (best, others, _) = Split(c, g);
            sft[g] = best.Average(i => reported[i]);
            foreach (int b in best) dSum[b] += 1.0 / best.Length / gCount * (norm == LengthNormalization.TokenMean ? 1.0 / tok.Lengths[b] : 1.0);
            correct[g] = others.Length == 0 ? null : best.Min(i => reported[i]) < others.Min(i => reported[i]);
            var members = best.Concat(others).ToArray();
            foreach (int i in members)
            {
                foreach (int j in members)
                {
                    if (!(c.Ratings[i] < c.Ratings[j])) continue;
                    // p = -mean NLL; max(0, p_i - p_j) = max(0, mean_j - mean_i).
                    double hinge = mean[j] - mean[i];
                    if (hinge <= 0) continue;
                    rank[g] += hinge;
                    dSum[j] += weight / gCount / tok.Lengths[j];
                    dSum[i] -= weight / gCount / tok.Lengths[i];
                }
            }
        }
        double loss = Enumerable.Range(0, gCount).Average(g => sft[g] + weight * rank[g]);
        return new OracleResult(loss, reported, sft, rank, Gradient(c, tok, dSum), correct);
    }
}
