using StableAlignment.Core.Sandbox;

namespace StableAlignment.Plots;

/// <summary>The figures of a sandbox log.</summary>
public static class SocietyPlots
{
    /// <summary>
    /// Observer alignment of drafts and of revisions as a histogram over the 1-7 scale (mean over observers, rounded):
    /// Back-Scatter should move mass up the scale.
    /// </summary>
    /// <param name="interactions">The logged interactions (<see cref="SandboxLog.ReadRecords"/>).</param>
    /// <param name="path">The PNG to write (its folder is created when missing).</param>
    /// <returns><paramref name="path"/>.</returns>
    public static string SaveRatingsBeforeAfter(IReadOnlyList<InteractionRecord> interactions, string path)
    {
        ArgumentNullException.ThrowIfNull(interactions);
        ArgumentException.ThrowIfNullOrEmpty(path);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var ratings = new ScottPlot.Plot();
        double highest = 0;
        foreach (var (name, values, offset) in new[]
        {
            ("draft", interactions.Select(r => r.DraftAlignment), -0.2),
            ("revision", interactions.Select(r => r.RevisionAlignment), 0.2),
        })
        {
            var counts = new double[7];
            foreach (var v in values)
                if (v is double d) counts[Math.Clamp((int)Math.Round(d) - 1, 0, 6)]++;
            highest = Math.Max(highest, counts.Max());
            var bars = ratings.Add.Bars(Enumerable.Range(1, 7).Select(r => r + offset).ToArray(), counts);
            bars.LegendText = name;
            foreach (var bar in bars.Bars) bar.Size = 0.4;
        }
        ratings.Title("Observer alignment rating before and after revision");
        ratings.XLabel("rating (1-7, mean over observers, rounded)");
        ratings.YLabel("interactions");
        // Whole ratings on the axis, counts from zero, and the legend beside the bars.
        ratings.Axes.Bottom.SetTicks([.. Enumerable.Range(1, 7).Select(r => (double)r)], [.. Enumerable.Range(1, 7).Select(r => r.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
        ratings.Axes.SetLimitsY(0, Math.Max(1, highest) * 1.1);
        ratings.ShowLegend(ScottPlot.Edge.Right);
        ratings.SavePng(path, 900, 500);
        return path;
    }
}
