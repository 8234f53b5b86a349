using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace StableAlignment.Core.Data;

/// <summary>Percentiles of a length distribution (linear interpolation between order statistics).</summary>
/// <param name="P50">The median.</param>
/// <param name="P90">The 90th percentile.</param>
/// <param name="P99">The 99th percentile.</param>
/// <param name="Max">The largest value.</param>
public readonly record struct LengthPercentiles(double P50, double P90, double P99, double Max);

/// <summary>The statistics of one sample kind.</summary>
/// <param name="Kind">The kind.</param>
/// <param name="Queries">Records (distinct queries) of this kind.</param>
/// <param name="Samples">Responses of this kind.</param>
/// <param name="RatingHistogram">Count of ratings per integer bin, from <c>floor(MinRating)</c> up; a rating falls in the bin of its nearest integer.</param>
/// <param name="QueryLength">Length percentiles of the rendered queries.</param>
/// <param name="ResponseLength">Length percentiles of the responses.</param>
public sealed record KindStatistics(SampleKind Kind, int Queries, long Samples, IReadOnlyList<long> RatingHistogram,
    LengthPercentiles QueryLength, LengthPercentiles ResponseLength);

/// <summary>Counts per kind, rating histograms per kind and length percentiles of an <see cref="AlignmentDataset"/>.</summary>
public sealed class AlignmentDatasetStatistics
{
    private AlignmentDatasetStatistics(IReadOnlyList<KindStatistics> kinds, int firstBin, string lengthUnit)
    {
        PerKind = kinds;
        FirstRatingBin = firstBin;
        LengthUnit = lengthUnit;
    }

    /// <summary>One entry per kind, in <see cref="SampleKind"/> order.</summary>
    public IReadOnlyList<KindStatistics> PerKind { get; }

    /// <summary>The rating of the first histogram bin.</summary>
    public int FirstRatingBin { get; }

    /// <summary>"tokens" or "characters".</summary>
    public string LengthUnit { get; }

    internal static AlignmentDatasetStatistics Compute(AlignmentDataset dataset, Tokenizer? tokenizer)
    {
        int first = (int)Math.Floor(dataset.Options.MinRating);
        int bins = (int)Math.Ceiling(dataset.Options.MaxRating) - first + 1;
        var result = new List<KindStatistics>();
        foreach (var kind in Enum.GetValues<SampleKind>())
        {
            var histogram = new long[bins];
            var queryLengths = new List<double>();
            var responseLengths = new List<double>();
            int queries = 0;
            for (int g = 0; g < dataset.Records.Count; g++)
            {
                if (dataset.Kinds[g] != kind)
                    continue;
                var r = dataset.Records[g];
                queries++;
                queryLengths.Add(Length(r.Query, tokenizer));
                for (int i = 0; i < r.Responses.Count; i++)
                {
                    responseLengths.Add(Length(r.Responses[i], tokenizer));
                    int bin = (int)Math.Round(r.Scores[i], MidpointRounding.AwayFromZero) - first;
                    histogram[Math.Clamp(bin, 0, bins - 1)]++;
                }
            }
            result.Add(new KindStatistics(kind, queries, responseLengths.Count, histogram,
                Percentiles(queryLengths), Percentiles(responseLengths)));
        }
        return new AlignmentDatasetStatistics(result, first, tokenizer is null ? "characters" : "tokens");
    }

    private static double Length(string text, Tokenizer? tokenizer) => tokenizer?.CountTokens(text) ?? text.Length;

    internal static LengthPercentiles Percentiles(List<double> values)
    {
        if (values.Count == 0)
            return default;
        values.Sort();
        return new LengthPercentiles(Percentile(values, 0.5), Percentile(values, 0.9), Percentile(values, 0.99), values[^1]);
    }

    // Linear interpolation between the order statistics at (n - 1) * p.
    private static double Percentile(List<double> sorted, double p)
    {
        double h = (sorted.Count - 1) * p;
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + ((h - lo) * (sorted[hi] - sorted[lo]));
    }

    /// <summary>A plain-text table of the statistics.</summary>
    /// <returns>The text.</returns>
    public string ToText()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(c, $"{"kind",-12} {"queries",9} {"samples",9}   ratings {FirstRatingBin}..{FirstRatingBin + PerKind[0].RatingHistogram.Count - 1}");
        foreach (var k in PerKind)
            sb.AppendLine(c, $"{k.Kind,-12} {k.Queries,9} {k.Samples,9}   [{string.Join(", ", k.RatingHistogram)}]");
        sb.AppendLine(c, $"lengths in {LengthUnit}: p50 / p90 / p99 / max");
        foreach (var k in PerKind)
        {
            sb.AppendLine(c, $"{k.Kind,-12} query    {Format(k.QueryLength)}");
            sb.AppendLine(c, $"{k.Kind,-12} response {Format(k.ResponseLength)}");
        }
        return sb.ToString();

        string Format(LengthPercentiles p) => string.Create(c, $"{p.P50:0.#} / {p.P90:0.#} / {p.P99:0.#} / {p.Max:0.#}");
    }
}
