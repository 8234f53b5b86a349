using StableAlignment.Core.Data;

namespace StableAlignment.Plots;

/// <summary>The figures of an <see cref="AlignmentDatasetStatistics"/>.</summary>
public static class DatasetPlots
{
    /// <summary>
    /// Writes <c>ratings.png</c> (rating histogram per kind) and <c>lengths.png</c> (length percentiles per kind)
    /// into <paramref name="directory"/>.
    /// </summary>
    /// <param name="statistics">The dataset's statistics.</param>
    /// <param name="directory">The output folder (created when missing).</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="height">Image height in pixels.</param>
    /// <returns>The two file paths.</returns>
    public static IReadOnlyList<string> Save(AlignmentDatasetStatistics statistics, string directory, int width = 900, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var perKind = statistics.PerKind;
        int firstRatingBin = statistics.FirstRatingBin;
        string lengthUnit = statistics.LengthUnit;
        Directory.CreateDirectory(directory);
        const double BarWidth = 0.25;

        var ratings = new ScottPlot.Plot();
        int bins = perKind[0].RatingHistogram.Count;
        double highest = perKind.SelectMany(k => k.RatingHistogram).DefaultIfEmpty(0).Max();
        for (int k = 0; k < perKind.Count; k++)
        {
            var s = perKind[k];
            var positions = Enumerable.Range(0, bins).Select(b => firstRatingBin + b + ((k - 1) * BarWidth)).ToArray();
            var bars = ratings.Add.Bars(positions, s.RatingHistogram.Select(v => (double)v).ToArray());
            foreach (var bar in bars.Bars)
                bar.Size = BarWidth;
            bars.LegendText = s.Kind.ToString();
        }
        ratings.Title("Ratings per kind");
        ratings.XLabel("rating");
        ratings.YLabel("samples");
        // Whole ratings on the axis, counts from zero, and the legend beside the bars.
        ratings.Axes.Bottom.SetTicks([.. Enumerable.Range(0, bins).Select(b => (double)(firstRatingBin + b))],
            [.. Enumerable.Range(0, bins).Select(b => (firstRatingBin + b).ToString(System.Globalization.CultureInfo.InvariantCulture))]);
        ratings.Axes.SetLimitsY(0, Math.Max(1, highest) * 1.1);
        ratings.ShowLegend(ScottPlot.Edge.Right);
        string ratingsPath = Path.Combine(directory, "ratings.png");
        ratings.SavePng(ratingsPath, width, height);

        var lengths = new ScottPlot.Plot();
        string[] labels = ["query p50", "query p90", "query p99", "response p50", "response p90", "response p99"];
        for (int k = 0; k < perKind.Count; k++)
        {
            var s = perKind[k];
            double[] values = [s.QueryLength.P50, s.QueryLength.P90, s.QueryLength.P99, s.ResponseLength.P50, s.ResponseLength.P90, s.ResponseLength.P99];
            var bars = lengths.Add.Bars(Enumerable.Range(0, labels.Length).Select(i => i + ((k - 1) * BarWidth)).ToArray(), values);
            foreach (var bar in bars.Bars)
                bar.Size = BarWidth;
            bars.LegendText = s.Kind.ToString();
        }
        lengths.Axes.Bottom.SetTicks([.. Enumerable.Range(0, labels.Length).Select(i => (double)i)], labels);
        lengths.Title("Length percentiles per kind");
        lengths.YLabel(lengthUnit);
        lengths.Axes.SetLimitsY(0, Math.Max(1, perKind.SelectMany(k => new[] { k.QueryLength.P99, k.ResponseLength.P99 }).Max()) * 1.1);
        lengths.ShowLegend(ScottPlot.Edge.Right);
        string lengthsPath = Path.Combine(directory, "lengths.png");
        lengths.SavePng(lengthsPath, width, height);
        return [ratingsPath, lengthsPath];
    }
}
