using StableAlignment.Core.Evaluation;

namespace StableAlignment.Plots;

/// <summary>The figures of an experiment report.</summary>
public static class ReportPlots
{
    /// <summary>Accuracy per variant with Wilson error bars, one series per task.</summary>
    /// <param name="report">The report.</param>
    /// <param name="path">The PNG to write (its folder is created when missing).</param>
    /// <returns><paramref name="path"/>.</returns>
    public static string SaveAccuracy(AblationReport report, string path)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentException.ThrowIfNullOrEmpty(path);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var variants = report.Design.Variants;
        var tasks = report.Evaluation.Tasks.Select(t => t.Task).Distinct().ToList();
        var accuracy = new ScottPlot.Plot();
        for (int k = 0; k < tasks.Count; k++)
        {
            var rows = variants.Select((v, i) => (i, s: report.Evaluation.Tasks.FirstOrDefault(t => t.Model == v && t.Task == tasks[k])))
                .Where(x => x.s is not null).ToList();
            double[] xs = rows.Select(r => r.i + (k - ((tasks.Count - 1) / 2.0)) * 0.8 / tasks.Count).ToArray();
            double[] ys = rows.Select(r => r.s!.Overall.Accuracy.Value).ToArray();
            var bars = accuracy.Add.Bars(xs, ys);
            bars.LegendText = tasks[k];
            foreach (var bar in bars.Bars) bar.Size = 0.8 / tasks.Count;
            double[] zero = new double[xs.Length];
            accuracy.Add.Plottable(new ScottPlot.Plottables.ErrorBar(xs, ys, zero, zero,
                rows.Select(r => r.s!.Overall.Accuracy.Upper - r.s.Overall.Accuracy.Value).ToArray(),
                rows.Select(r => r.s!.Overall.Accuracy.Value - r.s.Overall.Accuracy.Lower).ToArray()));
        }
        accuracy.Axes.Bottom.SetTicks(Enumerable.Range(0, variants.Count).Select(i => (double)i).ToArray(), variants.ToArray());
        accuracy.Axes.SetLimitsY(0, 1);
        accuracy.Title("Accuracy per variant (95% Wilson intervals)");
        accuracy.YLabel("accuracy (share of items right)");
        accuracy.XLabel("variant");
        accuracy.ShowLegend(ScottPlot.Edge.Right);
        accuracy.SavePng(path, 900, 500);
        return path;
    }
}
