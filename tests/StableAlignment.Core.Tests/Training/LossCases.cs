using FsCheck;
using FsCheck.Fluent;

namespace StableAlignment.Core.Tests.Training;

/// <summary>FsCheck generators of loss inputs: random shapes, group sizes, masks and ratings (ties included).</summary>
internal static class LossCases
{
    public static Gen<LossCase> Any(int maxN = 7, int maxT = 5, int maxV = 13, double logitScale = 3.0) =>
        from n in Gen.Choose(1, maxN)
        from t in Gen.Choose(1, maxT)
        from v in Gen.Choose(2, maxV)
        from groupCount in Gen.Choose(1, n)
        from integerRatings in Gen.Elements(true, true, false)
        from seed in Gen.Choose(0, int.MaxValue - 1)
        select Build(n, t, v, groupCount, integerRatings, seed, logitScale);

    /// <summary>Fills a case of the given shape from a seed; every group and every response is non-empty.</summary>
    public static LossCase Build(int n, int t, int v, int groupCount, bool integerRatings, int seed, double logitScale = 3.0)
    {
        var rng = new Random(seed);
        var logits = new double[n * t * v];
        for (int k = 0; k < logits.Length; k++) logits[k] = (rng.NextDouble() * 2 - 1) * logitScale;

        var targets = new long[n * t];
        var mask = new bool[n * t];
        for (int i = 0; i < n; i++)
        {
            int keep = rng.Next(t);
            for (int j = 0; j < t; j++)
            {
                mask[i * t + j] = j == keep || rng.NextDouble() < 0.7;
                targets[i * t + j] = mask[i * t + j] ? rng.Next(v) : -100;
            }
        }

        // The first groupCount responses seed each group so none is empty; the rest land anywhere.
        var groups = new long[n];
        for (int i = 0; i < n; i++) groups[i] = i < groupCount ? i : rng.Next(groupCount);
        var ratings = new double[n];
        for (int i = 0; i < n; i++)
            ratings[i] = integerRatings ? rng.Next(1, 8) : Math.Round(1 + rng.NextDouble() * 6, 2);

        return new LossCase(n, t, v, logits, targets, mask, groups, ratings);
    }

    /// <summary>Hidden-state cases: random N, T, H, V with the masks, groups and ratings of <see cref="Build"/>.</summary>
    public static Gen<HiddenLossCase> AnyHidden(int maxN = 6, int maxT = 5, int maxH = 6, int maxV = 13) =>
        from n in Gen.Choose(1, maxN)
        from t in Gen.Choose(1, maxT)
        from h in Gen.Choose(1, maxH)
        from v in Gen.Choose(2, maxV)
        from groupCount in Gen.Choose(1, n)
        from integerRatings in Gen.Elements(true, true, false)
        from seed in Gen.Choose(0, int.MaxValue - 1)
        select BuildHidden(n, t, h, v, groupCount, integerRatings, seed);

    /// <summary>A hidden-state case of the given shape: entries of H and W uniform in [-1, 1] (logits of a few units).</summary>
    public static HiddenLossCase BuildHidden(int n, int t, int h, int v, int groupCount, bool integerRatings, int seed)
    {
        var c = Build(n, t, 1, groupCount, integerRatings, seed);
        var rng = new Random(seed ^ 0x5eed);
        var hidden = new double[n * t * h];
        var weight = new double[v * h];
        for (int k = 0; k < hidden.Length; k++) hidden[k] = rng.NextDouble() * 2 - 1;
        for (int k = 0; k < weight.Length; k++) weight[k] = (rng.NextDouble() * 2 - 1) * 2 / Math.Sqrt(h);
        // Build drew targets for V = 1; draw them again for this vocabulary (masked ones stay the ignore index).
        var targets = Array.ConvertAll(c.Targets, id => id < 0 ? id : rng.Next(v));
        return new HiddenLossCase(n, t, h, v, hidden, weight, targets, c.Mask, c.Groups, c.Ratings);
    }
}
