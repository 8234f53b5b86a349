namespace StableAlignment.Core.Models;

/// <summary>Picks the next token from one row of logits: greedy, or temperature with top-k and top-p filtering.</summary>
/// <remarks>Runs on the host in float64 so a seed reproduces the same choice on any device.</remarks>
internal static class TokenSampler
{
    public static int Sample(Span<float> logits, GenerationOptions options, Random random, IReadOnlySet<int>? generated = null)
    {
        if (generated is not null && options.RepetitionPenalty != 1.0) Penalise(logits, generated, (float)options.RepetitionPenalty);
        if (options.Temperature == 0) return ArgMax(logits);
        var probabilities = Distribution(logits, options);
        var u = random.NextDouble();
        var cumulative = 0.0;
        var last = 0;
        for (var i = 0; i < probabilities.Length; i++)
        {
            if (probabilities[i] <= 0) continue;
            last = i;
            cumulative += probabilities[i];
            if (u < cumulative) return i;
        }
        return last; // rounding left u above the total
    }

    /// <summary>CTRL's repetition penalty, as Hugging Face's RepetitionPenaltyLogitsProcessor applies it, on the tokens already generated.</summary>
    public static void Penalise(Span<float> logits, IReadOnlySet<int> generated, float penalty)
    {
        foreach (int id in generated)
        {
            if ((uint)id >= (uint)logits.Length) continue;
            logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
        }
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }

    /// <summary>The filtered, renormalised sampling distribution (zeros for excluded tokens).</summary>
    public static double[] Distribution(ReadOnlySpan<float> logits, GenerationOptions options)
    {
        var n = logits.Length;
        var p = new double[n];
        var max = double.NegativeInfinity;
        for (var i = 0; i < n; i++) max = Math.Max(max, logits[i] / options.Temperature);
        var order = Enumerable.Range(0, n).ToArray();
        for (var i = 0; i < n; i++) p[i] = Math.Exp(logits[i] / options.Temperature - max);
        // Descending probability, ties by lower id, so filtering is deterministic.
        Array.Sort(order, (a, b) => p[a] != p[b] ? p[b].CompareTo(p[a]) : a.CompareTo(b));

        var keep = options.TopK > 0 ? Math.Min(options.TopK, n) : n;
        var total = 0.0;
        for (var r = 0; r < keep; r++) total += p[order[r]];
        if (options.TopP < 1)
        {
            var cumulative = 0.0;
            for (var r = 0; r < keep; r++)
            {
                cumulative += p[order[r]] / total;
                if (cumulative >= options.TopP) { keep = r + 1; break; }
            }
        }

        var kept = new double[n];
        var z = 0.0;
        for (var r = 0; r < keep; r++) z += p[order[r]];
        for (var r = 0; r < keep; r++) kept[order[r]] = p[order[r]] / z;
        return kept;
    }
}
