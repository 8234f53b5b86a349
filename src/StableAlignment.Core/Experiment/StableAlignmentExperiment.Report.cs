using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Experiment;

public sealed partial class StableAlignmentExperiment
{
    /// <summary>
    /// Step 5: <see cref="RunFolder.Report"/> in the shape of the paper's table (with intervals), the paired comparisons,
    /// the verdict, the training table and, with plots plugged in, the figures. Everything is recomputed from the
    /// per-item files, so a report can be redone without the models.
    /// </summary>
    /// <param name="progress">Receives a report when the file is written.</param>
    /// <param name="cancellationToken">Stops the step.</param>
    /// <returns>The report.</returns>
    public async Task<AblationReport> WriteReportAsync(IProgress<ExperimentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var step = EnterStep();
        var results = ItemResultsJsonl.Read(RunFolder.Require(Folder.ItemResultsFile, "evaluate"));
        var summary = await TrainingSummary.ReadAsync<EvaluationSummary>(Folder.EvaluationSummary, "evaluate", cancellationToken).ConfigureAwait(false);
        var training = File.Exists(Folder.TrainingSummary)
            ? await TrainingSummary.ReadAsync<TrainingSummary>(Folder.TrainingSummary, "train", cancellationToken).ConfigureAwait(false)
            : null;
        if (training?.RunId is { } trainedRun && summary.TrainingRunId is { } evaluatedRun && trainedRun != evaluatedRun)
        {
            throw new ExperimentException(
                $"'{Folder.EvaluationDirectory}' evaluates training run {evaluatedRun}, but '{Folder.TrainingSummary}' describes run {trainedRun}: run the evaluate step again, then report.");
        }
        var report = AblationReport.Create(results, summary.Judged, Design());

        var plots = new List<string>();
        if (Backends.Plots is { } plotter)
        {
            Directory.CreateDirectory(Folder.PlotsDirectory);
            // The society's figure was drawn by the simulate step; the report shows it when it is there.
            plots.AddRange(plotter.Report(report, Folder.PlotsDirectory).Select(Folder.Relative));
            plots.AddRange(Directory.GetFiles(Folder.PlotsDirectory, "*.png").Select(Folder.Relative).Where(p => !plots.Contains(p)).Order(StringComparer.Ordinal));
        }
        var rows = training?.Variants.Select(v => new AblationTrainingRow(v.Name, v.Steps, v.Seconds, v.ValidationRankingAccuracy)).ToList() ?? [];
        var curves = Backends.Plots is null || training is null ? [] : training.Runs
            .SelectMany(r => new[] { ("loss", "loss.png"), ("validation", "validation.png") }
                .Select(c => (Label: $"{r.Name} {c.Item1}", Path: $"{r.Metrics}/{c.Item2}")))
            .Where(c => File.Exists(Path.Combine(Folder.Root, c.Path))).ToList();
        string markdown = report.ToMarkdown(rows, curves, plots,
            "No plots: this run had no plotting back-end. Reference the StableAlignment.Plots package and call WithPlots() on the experiment's backends to draw them.");
        await File.WriteAllTextAsync(Folder.Report, markdown, cancellationToken).ConfigureAwait(false);
        progress?.Report(new ExperimentProgress(ExperimentStep.Report, "report", 1, 1));
        return report;
    }
}
