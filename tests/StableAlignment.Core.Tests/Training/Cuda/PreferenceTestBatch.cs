using StableAlignment.Core.Training;
using StableAlignment.Core.Tests.Training;

namespace StableAlignment.Core.Tests.Training.Cuda;

/// <summary>A random preference batch with every response keeping at least one token in the loss.</summary>
internal sealed record PreferenceTestBatch(
    float[] Logits, int N, int T, int V, long[] Targets, long[] Groups, double[] Ratings, bool[]? Mask)
{
    /// <param name="seed">Random seed.</param>
    /// <param name="n">Responses.</param>
    /// <param name="t">Tokens per response.</param>
    /// <param name="v">Vocabulary.</param>
    /// <param name="explicitMask">An explicit mask, or ignore-index targets.</param>
    /// <param name="groupCount">Groups (at most n); random when 0.</param>
    public static PreferenceTestBatch Random(int seed, int n, int t, int v, bool explicitMask, int groupCount = 0, float scale = 3f)
    {
        var rng = new Random(seed);
        var g = groupCount > 0 ? groupCount : rng.Next(1, n + 1);
        // The first g responses found the groups, the rest join at random; then shuffle so groups interleave.
        var groups = Enumerable.Range(0, n).Select(i => (long)(i < g ? i : rng.Next(g))).OrderBy(_ => rng.Next()).ToArray();
        var ratings = Enumerable.Range(0, n).Select(_ => (double)rng.Next(1, 8)).ToArray();
        var logits = new float[(long)n * t * v];
        for (var i = 0; i < logits.Length; i++) logits[i] = (float)(scale * Gaussian(rng));
        var targets = new long[n * t];
        var mask = new bool[n * t];
        for (var i = 0; i < n; i++)
        {
            var keep = rng.Next(t); // one token that always stays in the loss
            for (var j = 0; j < t; j++)
            {
                var row = i * t + j;
                targets[row] = rng.Next(v);
                mask[row] = j == keep || rng.NextDouble() < 0.7;
                if (!explicitMask && !mask[row]) targets[row] = new ContrastivePreferenceOptions().IgnoreIndex;
            }
        }
        return new PreferenceTestBatch(logits, n, t, v, targets, groups, ratings, explicitMask ? mask : null);
    }

    /// <summary>Random options: any reduction and normalisation, sometimes SFT only, margin in [0, 2), weight in [0, 1).</summary>
    public static ContrastivePreferenceOptions RandomOptions(Random rng) => new()
    {
        Reduction = Enum.GetValues<RankingReduction>()[rng.Next(3)],
        LengthNormalization = rng.Next(2) == 0 ? LengthNormalization.TokenMean : LengthNormalization.Sum,
        SftOnly = rng.Next(4) == 0,
        Margin = rng.NextDouble() * 2,
        RankingWeight = rng.NextDouble(),
    };

    private static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    public CudaPreferenceHostBatch ToHost() => new(Logits, N, T, V, Targets, Groups, Ratings, Mask is null ? null : (ReadOnlyMemory<bool>?)Mask);

    /// <summary>The float64 oracle (Training/PreferenceLossOracle.cs) on this batch; the ignore index becomes an explicit mask.</summary>
    public OracleResult Oracle(ContrastivePreferenceOptions options)
    {
        var mask = Mask ?? Array.ConvertAll(Targets, id => id != options.IgnoreIndex);
        return PreferenceLossOracle.Compute(new LossCase(N, T, V, Array.ConvertAll(Logits, x => (double)x), Targets, mask, Groups, Ratings), options);
    }
}
