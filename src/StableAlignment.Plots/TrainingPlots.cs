using StableAlignment.Core.Training;

namespace StableAlignment.Plots;

/// <summary>The curves of a training run.</summary>
public static class TrainingPlots
{
    /// <summary>Draws <c>loss.png</c> (training loss per stage) and <c>validation.png</c> (held-out figures) of one run.</summary>
    /// <param name="history">The run's logged steps and validations (<see cref="TrainingHistory.Read"/>).</param>
    /// <param name="directory">The output folder (created when missing).</param>
    /// <returns>The files written (none for an empty history).</returns>
    public static IReadOnlyList<string> Save(TrainingHistory history, string directory)
    {
        ArgumentNullException.ThrowIfNull(history);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        // A resumed run repeats the steps after its last checkpoint; the later record of a step is the one that counts.
        var trained = history.Steps.GroupBy(s => s.Position.GlobalStep).Select(g => g.Last())
            .Where(s => !s.Skipped && double.IsFinite(s.Loss)).OrderBy(s => s.Position.GlobalStep).ToList();
        if (trained.Count > 0)
        {
            using var plot = new ScottPlot.Plot();
            foreach (var stage in trained.GroupBy(s => s.StageName))
            {
                var line = plot.Add.Scatter(stage.Select(s => (double)s.Position.GlobalStep).ToArray(), stage.Select(s => s.Loss).ToArray());
                line.LegendText = stage.Key;
                line.MarkerSize = 0;
            }
            plot.Title("Training loss");
            plot.XLabel("optimizer step");
            plot.YLabel("loss");
            // Beside the data, never over it.
            plot.ShowLegend(ScottPlot.Edge.Right);
            string path = Path.Combine(directory, "loss.png");
            plot.SavePng(path, 900, 500);
            written.Add(path);
        }

        var validations = history.Validations.GroupBy(v => v.GlobalStep).Select(g => g.Last()).OrderBy(v => v.GlobalStep).ToList();
        if (validations.Count > 0)
        {
            // Accuracy (0-1) on the left axis, NLL (nats, a few units) on the right: one scale would flatten one of them.
            using var plot = new ScottPlot.Plot();
            var x = validations.Select(v => (double)v.GlobalStep).ToArray();
            var accuracy = plot.Add.Scatter(x, validations.Select(v => v.RankingAccuracy).ToArray());
            accuracy.LegendText = "ranking accuracy (left)";
            var nll = plot.Add.Scatter(x, validations.Select(v => v.MeanBestNll).ToArray());
            nll.LegendText = "mean best-response NLL (right)";
            nll.Axes.YAxis = plot.Axes.Right;
            plot.Axes.SetLimitsY(0, 1, plot.Axes.Left);
            plot.Title("Validation (held-out queries)");
            plot.XLabel("optimizer step");
            plot.Axes.Left.Label.Text = "ranking accuracy";
            plot.Axes.Right.Label.Text = "mean best-response NLL (nats per token)";
            plot.ShowLegend(ScottPlot.Edge.Bottom);
            string path = Path.Combine(directory, "validation.png");
            plot.SavePng(path, 900, 500);
            written.Add(path);
        }
        return written;
    }
}
