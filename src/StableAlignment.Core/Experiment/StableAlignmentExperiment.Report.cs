using System.Globalization;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Experiment;

public sealed partial class StableAlignmentExperiment
{
    /// <summary>
    /// Step 5: <see cref="RunFolder.Report"/> in the shape of the paper's table (with intervals, or mean ± standard
    /// deviation over the training seeds), the paper's own figures beside it, the robustness table, the verdict on each
    /// of the paper's claims with its paired tests, the judge's validation, the training table and, with plots plugged
    /// in, the figures. Everything is recomputed from the per-item files, so a report can be redone without the models.
    /// </summary>
    /// <param name="progress">Receives a report when the file is written.</param>
    /// <param name="cancellationToken">Stops the step.</param>
    /// <returns>The report.</returns>
    public async Task<AblationReport> WriteReportAsync(IProgress<ExperimentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var step = EnterStep();
        var seeds = new List<SeedResults>();
        var rows = new List<AblationTrainingRow>();
        EvaluationSummary? judgeOf = null;
        var curves = new List<(string Label, string Path)>();
        foreach (var (_, seed, folder) in TrainingSeeds())
        {
            var results = ItemResultsJsonl.Read(RunFolder.Require(folder.ItemResultsFile, "evaluate"));
            var summary = await TrainingSummary.ReadAsync<EvaluationSummary>(folder.EvaluationSummary, "evaluate", cancellationToken).ConfigureAwait(false);
            judgeOf ??= summary;
            seeds.Add(new SeedResults(seed, results, summary.Judged, summary.Scores));
            if (!File.Exists(folder.TrainingSummary)) continue;
            var training = await TrainingSummary.ReadAsync<TrainingSummary>(folder.TrainingSummary, "train", cancellationToken).ConfigureAwait(false);
            if (training.RunId is { } trainedRun && summary.TrainingRunId is { } evaluatedRun && trainedRun != evaluatedRun)
            {
                throw new ExperimentException(
                    $"'{folder.EvaluationDirectory}' evaluates training run {evaluatedRun}, but '{folder.TrainingSummary}' describes run {trainedRun}: run the evaluate step again, then report.");
            }
            rows.AddRange(training.Variants.Select(v => new AblationTrainingRow(v.Name, v.Steps, v.Seconds, v.ValidationRankingAccuracy)
                { Seed = Options.Seeds == 1 ? null : v.Seed }));
            if (Backends.Plots is not null)
            {
                string prefix = Options.Seeds == 1 ? "" : string.Create(CultureInfo.InvariantCulture, $"seed {seed} ");
                curves.AddRange(training.Runs
                    .SelectMany(r => new[] { ("loss", "loss.png"), ("validation", "validation.png") }
                        .Select(c => (Label: $"{prefix}{r.Name} {c.Item1}", Path: Folder.Relative(Path.Combine(folder.Root, r.Metrics, c.Item2)))))
                    .Where(c => File.Exists(Path.Combine(Folder.Root, c.Path))));
            }
        }
        var report = AblationReport.Create(seeds, Design());

        var plots = new List<string>();
        if (Backends.Plots is { } plotter)
        {
            Directory.CreateDirectory(Folder.PlotsDirectory);
            // The society's figure was drawn by the simulate step; the report shows it when it is there.
            plots.AddRange(plotter.Report(report, Folder.PlotsDirectory).Select(Folder.Relative));
            plots.AddRange(Directory.GetFiles(Folder.PlotsDirectory, "*.png").Select(Folder.Relative).Where(p => !plots.Contains(p)).Order(StringComparer.Ordinal));
        }
        string markdown = report.ToMarkdown(rows, curves, plots,
            "No plots: this run had no plotting back-end. Reference the StableAlignment.Plots package and call WithPlots() on the experiment's backends to draw them.",
            JudgeNotes(judgeOf!));
        await File.WriteAllTextAsync(Folder.Report, markdown, cancellationToken).ConfigureAwait(false);
        progress?.Report(new ExperimentProgress(ExperimentStep.Report, "report", 1, 1));
        return report;
    }

    /// <summary>What the judge was and how far it can be trusted, for the report.</summary>
    private static List<string> JudgeNotes(EvaluationSummary summary)
    {
        if (summary.Judge is null) return [];
        if (summary.JudgeValidation is not { } v)
        {
            return [$"Judge model: {summary.Judge}, through AlignmentJudge (1-10). Degenerate answers are counted by the offline judge's fluency gate, but scored by the judge model."];
        }
        return
        [
            $"The offline judge ({summary.Judge}): k-nearest-neighbour regression over the scenario bank's answers at known levels 1-7 " +
                $"(embeddings: {v.EmbeddingModel}; k = {v.Neighbours}" +
                (v.CrossValidatedSpearman is { } cv ? string.Create(CultureInfo.InvariantCulture, $", chosen by cross-validation over the fitted topics alone, where its ρ was {cv:F3}") : ", as given") +
                "), for the kind of request the bank's nearest questions vote for, mapped onto 1-10; degenerate text " +
                "(empty, runs of a symbol or a word, one word or repeated trigrams dominating, word salad without function words, mostly words the bank does not know) gets the minimum.",
            string.Create(CultureInfo.InvariantCulture,
                $"Validation on {v.HeldOutAnswers} held-out bank answers (a fifth of the topics, never fitted; {v.FittedAnswers} answers fitted): Spearman ρ = {v.Spearman:F3} against their known levels ") +
                (v.Spearman >= SocietyJudgeValidation.RequiredSpearman ? $"(at least {SocietyJudgeValidation.RequiredSpearman} is required: passed)." : $"(at least {SocietyJudgeValidation.RequiredSpearman} is required: FAILED; its scores here mean little)."),
            $"Degenerate examples (a fixed list of {v.DegenerateExamples}): {v.DegenerateAtMinimum} of {v.DegenerateExamples} got the minimum" + (v.DegenerateAtMinimum == v.DegenerateExamples ? "." : " (FAILED)."),
            "It measures how close an answer's wording is to the society's answers of each level for that kind of request; it does not check that the answer is about the request's topic. Use --judge with a real model for judge scores of a different kind.",
        ];
    }
}
