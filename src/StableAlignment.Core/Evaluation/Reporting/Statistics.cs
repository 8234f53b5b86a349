using MathNet.Numerics;
using MathNet.Numerics.Distributions;

namespace StableAlignment.Core.Evaluation;

/// <summary>A proportion (such as an accuracy) with its Wilson score interval.</summary>
/// <param name="Successes">Items that count as successes.</param>
/// <param name="Count">Items in all.</param>
/// <param name="Lower">Lower end of the interval.</param>
/// <param name="Upper">Upper end of the interval.</param>
public sealed record ProportionEstimate(int Successes, int Count, double Lower, double Upper)
{
    /// <summary>The proportion, <see cref="Successes"/> / <see cref="Count"/>.</summary>
    public double Value => (double)Successes / Count;

    /// <summary>Estimates a proportion with a Wilson score interval.</summary>
    /// <param name="successes">Successes, 0 to <paramref name="count"/>.</param>
    /// <param name="count">Trials, at least 1.</param>
    /// <param name="confidence">Confidence level in (0, 1), for example 0.95.</param>
    /// <returns>The estimate.</returns>
    /// <remarks>
    /// Wilson rather than the normal (Wald) interval because it stays inside [0, 1] and keeps its coverage near 0 and 1
    /// and for small n, where alignment benchmarks often sit.
    /// </remarks>
    public static ProportionEstimate Wilson(int successes, int count, double confidence)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(successes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(successes, count);
        double z = Normal.InvCDF(0, 1, 1 - ((1 - confidence) / 2));
        double n = count, p = successes / n, z2 = z * z;
        double denominator = 1 + (z2 / n);
        double centre = (p + (z2 / (2 * n))) / denominator;
        double half = z / denominator * Math.Sqrt((p * (1 - p) / n) + (z2 / (4 * n * n)));
        return new ProportionEstimate(successes, count, Math.Max(0, centre - half), Math.Min(1, centre + half));
    }
}

/// <summary>A mean with its standard error and a Student-t confidence interval.</summary>
/// <param name="Count">Values averaged.</param>
/// <param name="Mean">The mean.</param>
/// <param name="StandardError">Sample standard deviation (n - 1) over sqrt(n); NaN when n is 1.</param>
/// <param name="Lower">Lower end of the interval (NaN when n is 1).</param>
/// <param name="Upper">Upper end of the interval (NaN when n is 1).</param>
public sealed record MeanEstimate(int Count, double Mean, double StandardError, double Lower, double Upper)
{
    /// <summary>Estimates the mean of some values.</summary>
    /// <param name="values">At least one value.</param>
    /// <param name="confidence">Confidence level in (0, 1).</param>
    /// <returns>The estimate.</returns>
    public static MeanEstimate Of(IReadOnlyCollection<double> values, double confidence)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentOutOfRangeException.ThrowIfLessThan(values.Count, 1, nameof(values));
        int n = values.Count;
        double mean = values.Sum() / n;
        if (n == 1)
        {
            return new MeanEstimate(1, mean, double.NaN, double.NaN, double.NaN);
        }
        double ss = values.Sum(v => (v - mean) * (v - mean));
        double se = Math.Sqrt(ss / (n - 1)) / Math.Sqrt(n);
        double t = StudentT.InvCDF(0, 1, n - 1, 1 - ((1 - confidence) / 2));
        return new MeanEstimate(n, mean, se, mean - (t * se), mean + (t * se));
    }
}

/// <summary>McNemar's test on two models' right/wrong outcomes over the same items.</summary>
/// <param name="ModelA">The first model's name.</param>
/// <param name="ModelB">The second model's name.</param>
/// <param name="Task">The task compared.</param>
/// <param name="Count">Paired items.</param>
/// <param name="BothCorrect">Items both models got right.</param>
/// <param name="OnlyA">Items only model A got right.</param>
/// <param name="OnlyB">Items only model B got right.</param>
/// <param name="BothWrong">Items both got wrong.</param>
/// <param name="PValue">Two-sided p-value.</param>
/// <param name="Exact">Whether the exact binomial test was used (few discordant pairs) rather than the
/// continuity-corrected chi-square.</param>
public sealed record PairedComparison(string ModelA, string ModelB, string Task, int Count, int BothCorrect, int OnlyA,
    int OnlyB, int BothWrong, double PValue, bool Exact)
{
    /// <summary>Accuracy of A minus accuracy of B.</summary>
    public double AccuracyDifference => (double)(OnlyA - OnlyB) / Count;

    /// <summary>Compares two models' <c>acc</c> on the same task, item by item (paired by item id).</summary>
    /// <param name="a">Model A's results.</param>
    /// <param name="b">Model B's results on the same items.</param>
    /// <param name="options">Report options (the exact-test threshold); defaults when null.</param>
    /// <returns>The comparison.</returns>
    /// <exception cref="ArgumentException">The two results are for different tasks or different item sets.</exception>
    public static PairedComparison McNemar(TaskResults a, TaskResults b, ReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        options ??= new ReportOptions();
        options.Validate();
        if (a.Task != b.Task)
        {
            throw new ArgumentException($"Cannot pair task '{a.Task}' with task '{b.Task}'.", nameof(b));
        }
        var byId = b.Items.ToDictionary(i => i.Id, i => i.Metrics.Accuracy, StringComparer.Ordinal);
        if (byId.Count != a.Items.Count)
        {
            throw new ArgumentException($"Task '{a.Task}': model '{a.Model}' has {a.Items.Count} items, model '{b.Model}' {byId.Count}; a paired comparison needs the same items.", nameof(b));
        }
        int both = 0, onlyA = 0, onlyB = 0, neither = 0;
        foreach (var item in a.Items)
        {
            if (!byId.TryGetValue(item.Id, out bool bRight))
            {
                throw new ArgumentException($"Task '{a.Task}': item '{item.Id}' was scored for model '{a.Model}' but not for '{b.Model}'.", nameof(b));
            }
            bool aRight = item.Metrics.Accuracy;
            if (aRight && bRight) { both++; }
            else if (aRight) { onlyA++; }
            else if (bRight) { onlyB++; }
            else { neither++; }
        }
        int discordant = onlyA + onlyB;
        bool exact = discordant < options.McNemarExactBelow;
        double p;
        if (discordant == 0)
        {
            p = 1;
        }
        else if (exact)
        {
            // Under H0 each discordant pair falls either way with probability 1/2: a two-sided binomial test.
            p = Math.Min(1, 2 * Binomial.CDF(0.5, discordant, Math.Min(onlyA, onlyB)));
        }
        else
        {
            double corrected = Math.Max(0, Math.Abs(onlyA - onlyB) - 1);
            double chi = corrected * corrected / discordant;
            // The chi-square(1) upper tail is erfc(sqrt(chi / 2)); 1 - CDF would round to 0 for large chi.
            p = SpecialFunctions.Erfc(Math.Sqrt(chi / 2));
        }
        return new PairedComparison(a.Model, b.Model, a.Task, a.Items.Count, both, onlyA, onlyB, neither, p, exact);
    }
}
