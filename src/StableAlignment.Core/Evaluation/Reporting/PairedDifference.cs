
namespace StableAlignment.Core.Evaluation;

/// <summary>
/// A paired comparison of two models on the same items from per-item differences (A minus B), with a two-sided
/// sign-flip permutation test: under the null hypothesis each item's difference is as likely positive as negative.
/// </summary>
/// <param name="Count">Paired items.</param>
/// <param name="MeanDifference">Mean of the differences (A minus B).</param>
/// <param name="Lower">Lower end of the t interval of the mean difference (NaN for one item).</param>
/// <param name="Upper">Upper end of the t interval of the mean difference (NaN for one item).</param>
/// <param name="Positive">Items where A is above B.</param>
/// <param name="Negative">Items where A is below B.</param>
/// <param name="PValue">Two-sided p-value of the sign-flip test on the mean difference.</param>
/// <param name="Exact">Whether every sign pattern was enumerated (few non-zero differences) rather than sampled.</param>
/// <remarks>
/// It needs no distribution: binary items (right or wrong) make it an exact McNemar-like test, and judge scores or
/// seed-averaged values work the same way. With more than <see cref="ExactUpTo"/> non-zero differences the p-value is
/// estimated from <see cref="Permutations"/> seeded random flips as (1 + extreme) / (1 + flips), so it is reproducible
/// and never 0.
/// </remarks>
public sealed record PairedDifference(int Count, double MeanDifference, double Lower, double Upper, int Positive, int Negative, double PValue, bool Exact)
{
    /// <summary>Non-zero differences up to which every sign pattern is enumerated.</summary>
    public const int ExactUpTo = 16;

    /// <summary>Random sign flips above <see cref="ExactUpTo"/>.</summary>
    public const int Permutations = 20_000;

    /// <summary>Tests per-item differences.</summary>
    /// <param name="differences">A minus B per item; at least one, all finite.</param>
    /// <param name="confidence">Confidence level of the interval.</param>
    /// <param name="seed">Seed of the random flips.</param>
    /// <returns>The comparison.</returns>
    /// <exception cref="ArgumentException">No differences, or one that is not finite.</exception>
    public static PairedDifference Test(IReadOnlyList<double> differences, double confidence = 0.95, int seed = 12345)
    {
        ArgumentNullException.ThrowIfNull(differences);
        if (differences.Count == 0) throw new ArgumentException("A paired test needs at least one item.", nameof(differences));
        for (int i = 0; i < differences.Count; i++)
        {
            if (!double.IsFinite(differences[i])) throw new ArgumentException($"differences[{i}] is {differences[i]}; every difference must be finite.", nameof(differences));
        }
        var mean = MeanEstimate.Of([.. differences], confidence);
        // Tiny float noise from averaging is not a difference.
        var nonZero = differences.Where(d => Math.Abs(d) > 1e-12).ToArray();
        double observed = Math.Abs(nonZero.Sum());
        double p;
        bool exact = nonZero.Length <= ExactUpTo;
        if (nonZero.Length == 0)
        {
            p = 1;
        }
        else if (exact)
        {
            int extreme = 0, patterns = 1 << nonZero.Length;
            for (int mask = 0; mask < patterns; mask++)
            {
                double s = 0;
                for (int i = 0; i < nonZero.Length; i++) s += (mask & (1 << i)) != 0 ? -nonZero[i] : nonZero[i];
                if (Math.Abs(s) >= observed - 1e-9) extreme++;
            }
            p = (double)extreme / patterns;
        }
        else
        {
            var rng = new Random(seed);
            int extreme = 0;
            for (int k = 0; k < Permutations; k++)
            {
                double s = 0;
                for (int i = 0; i < nonZero.Length; i++) s += rng.Next(2) == 0 ? nonZero[i] : -nonZero[i];
                if (Math.Abs(s) >= observed - 1e-9) extreme++;
            }
            p = (1.0 + extreme) / (1.0 + Permutations);
        }
        return new PairedDifference(differences.Count, mean.Mean, mean.Lower, mean.Upper,
            differences.Count(d => d > 1e-12), differences.Count(d => d < -1e-12), Math.Min(1, p), exact);
    }
}
