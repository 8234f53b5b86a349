using System.Globalization;
using System.Text;
using Spectre.Console;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Cli.Steps;

/// <summary>
/// Step 5: <c>report.md</c> in the shape of the paper's table (with intervals), paired comparisons, an honest verdict
/// on the variants' order, and PNG plots. Everything is recomputed from the per-item files, so a report can be
/// redone (or rescored) without the models.
/// </summary>
internal static class ReportStep
{
    public static async Task RunAsync(RunLayout layout, CancellationToken ct)
    {
        var results = ItemResultsJsonl.Read(RunLayout.Require(Path.Combine(layout.EvaluationDirectory, "items.jsonl"), "evaluate"));
        var summary = await Json.ReadAsync<EvaluationSummary>(layout.EvaluationSummary, "evaluate", ct);
        var training = File.Exists(layout.TrainingSummary) ? await Json.ReadAsync<List<VariantTraining>>(layout.TrainingSummary, "train", ct) : [];
        Directory.CreateDirectory(layout.PlotsDirectory);

        var comparisons = new List<PairedComparison>();
        foreach (var task in results.Select(r => r.Task).Distinct())
        {
            TaskResults? Of(string variant) => results.FirstOrDefault(r => r.Task == task && r.Model == variant);
            foreach (var (a, b) in new[] { (Variants.Full, Variants.SftBaseline), (Variants.ImitationSelfCritic, Variants.Imitation), (Variants.Full, Variants.ImitationSelfCritic) })
                if (Of(a) is { } ra && Of(b) is { } rb) comparisons.Add(PairedComparison.McNemar(ra, rb));
        }
        var report = EvaluationReport.Create(results, null, comparisons, summary.Judged);

        var md = new StringBuilder();
        md.AppendLine("# Stable Alignment run report").AppendLine();
        md.AppendLine("A tiny LLaMA-style model trained on data from the simulated society, compared as in the paper's table. ")
          .AppendLine("Accuracies are proportions with 95% Wilson intervals; judge scores are means on the 1-10 scale with 95% t intervals.")
          .AppendLine();
        md.AppendLine(SeedTable(report)).AppendLine();
        md.AppendLine("## Verdict").AppendLine();
        foreach (var line in Verdict(report)) md.AppendLine("- " + line);
        md.AppendLine();
        if (training.Count > 0)
        {
            md.AppendLine("## Training").AppendLine();
            md.AppendLine("| variant | optimizer steps (cumulative) | seconds (cumulative) | held-out ranking accuracy at the end |").AppendLine("|---|---:|---:|---:|");
            foreach (var t in training)
                md.AppendLine(CultureInfo.InvariantCulture, $"| {t.Variant} | {t.Steps} | {t.Seconds:F0} | {Percent(t.ValidationRankingAccuracy)} |");
            md.AppendLine();
            md.AppendLine("Curves: " + string.Join(", ", new[] { Variants.SftBaseline, Variants.Full }
                .Select(v => $"[{v} loss](metrics/{Variants.FolderName(v)}/loss.png), [{v} validation](metrics/{Variants.FolderName(v)}/validation.png)"))).AppendLine();
        }
        md.AppendLine("## Plots").AppendLine();
        foreach (var plot in Plots(layout, report)) md.AppendLine(CultureInfo.InvariantCulture, $"![{Path.GetFileNameWithoutExtension(plot)}](plots/{Path.GetFileName(plot)})");
        md.AppendLine();
        md.AppendLine("## Every task in detail").AppendLine();
        md.AppendLine(report.ToMarkdown());
        await File.WriteAllTextAsync(layout.Report, md.ToString(), ct);

        AnsiConsole.Write(new Panel(new Text(SeedTable(report))).Header("report"));
        AnsiConsole.MarkupLineInterpolated(System.Globalization.CultureInfo.InvariantCulture, $"  [green]✓[/] {layout.Report}");
    }

    /// <summary>Rows are the variants, columns the benchmarks, as in the seed's table.</summary>
    private static string SeedTable(EvaluationReport report)
    {
        var tasks = report.Tasks.Select(t => t.Task).Distinct().OrderBy(t => t == RankingEvaluation.TaskName ? 0 : 1).ThenBy(t => t, StringComparer.Ordinal).ToList();
        var judged = report.Judged.Select(j => j.Task).Distinct().ToList();
        var sb = new StringBuilder();
        sb.Append("| model |");
        foreach (var j in judged) sb.Append(CultureInfo.InvariantCulture, $" {j.ToUpperInvariant()} judge (1-10) |");
        foreach (var t in tasks) sb.Append(CultureInfo.InvariantCulture, $" {t} acc |");
        sb.AppendLine().Append("|---|").Append(string.Concat(Enumerable.Repeat("---:|", judged.Count + tasks.Count))).AppendLine();
        foreach (var variant in Variants.All)
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {variant} |");
            foreach (var j in judged)
            {
                var s = report.Judged.FirstOrDefault(x => x.Model == variant && x.Task == j);
                sb.Append(s?.Score is { } m ? $" {m.Mean:F2} [{m.Lower:F2}, {m.Upper:F2}] (n={m.Count}) |" : " - |");
            }
            foreach (var t in tasks)
            {
                var s = report.Tasks.FirstOrDefault(x => x.Model == variant && x.Task == t);
                sb.Append(s is null ? " - |" : string.Create(CultureInfo.InvariantCulture,
                    $" {s.Overall.Accuracy.Value:F3} [{s.Overall.Accuracy.Lower:F3}, {s.Overall.Accuracy.Upper:F3}] (n={s.Overall.Count}) |"));
            }
            sb.AppendLine();
        }
        return sb.ToString();
    }

    private static IEnumerable<string> Verdict(EvaluationReport report)
    {
        ProportionEstimate? Ranking(string variant) =>
            report.Tasks.FirstOrDefault(t => t.Model == variant && t.Task == RankingEvaluation.TaskName)?.Overall.Accuracy;
        var baseline = Ranking(Variants.SftBaseline);
        var full = Ranking(Variants.Full);
        if (baseline is not null && full is not null)
        {
            bool beyond = full.Lower > baseline.Upper;
            var paired = report.Comparisons.FirstOrDefault(c => c.Task == RankingEvaluation.TaskName && c.ModelA == Variants.Full && c.ModelB == Variants.SftBaseline);
            yield return string.Create(CultureInfo.InvariantCulture,
                $"Held-out ranking accuracy: IL+SC+RA {full.Value:P1} vs SFT-only baseline {baseline.Value:P1} ({(full.Value - baseline.Value) * 100:+0.0;-0.0} points). ") +
                (beyond ? "The 95% intervals do not overlap: IL+SC+RA beats the baseline by more than the interval."
                        : "The 95% intervals overlap: the gain is not larger than the interval.") +
                (paired is null ? "" : string.Create(CultureInfo.InvariantCulture, $" Paired McNemar on the same queries: {paired.OnlyA} won only by IL+SC+RA, {paired.OnlyB} only by the baseline, p = {paired.PValue:G3}."));
        }
        var stages = new[] { Variants.Imitation, Variants.ImitationSelfCritic, Variants.Full }.Select(v => (v, Ranking(v))).ToList();
        if (stages.All(s => s.Item2 is not null))
        {
            var values = stages.Select(s => s.Item2!.Value).ToList();
            bool ordered = values[0] <= values[1] && values[1] <= values[2];
            string text = string.Join(" -> ", stages.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.v} {s.Item2!.Value:P1}")));
            if (ordered)
            {
                yield return $"The stages come out in the paper's order on held-out ranking (IL ≤ IL+SC ≤ IL+SC+RA): {text}.";
            }
            else
            {
                // Name each step that went down and say, from the paired test on the same queries, whether that is noise.
                var drops = new List<string>();
                for (int i = 1; i < stages.Count; i++)
                {
                    if (values[i] >= values[i - 1]) continue;
                    var c = report.Comparisons.FirstOrDefault(x => x.Task == RankingEvaluation.TaskName && x.ModelA == stages[i].v && x.ModelB == stages[i - 1].v);
                    drops.Add(string.Create(CultureInfo.InvariantCulture, $"{stages[i - 1].v} -> {stages[i].v} loses {(values[i - 1] - values[i]) * 100:0.0} points") +
                        (c is null ? "" : string.Create(CultureInfo.InvariantCulture,
                            $" (queries right only before: {c.OnlyB}, only after: {c.OnlyA}; McNemar p = {c.PValue:G3}, {(c.PValue < 0.05 ? "a real drop" : "within the noise")})")));
                }
                yield return $"The stages do NOT come out in the paper's order (IL ≤ IL+SC ≤ IL+SC+RA) on held-out ranking: {text}. {string.Join("; ", drops)}. " +
                    "Only the imitation stage optimises this ranking directly: the self-critic stage is SFT on critiques, and each realignment query has one response, so the contrastive objective reduces to SFT on the revisions there (some rated only 5).";
            }
        }
        foreach (var tied in report.Tasks.Where(t => t.Task != RankingEvaluation.TaskName && 2 * t.Overall.TiedItems > t.Overall.Count).GroupBy(t => t.Task))
        {
            yield return $"{tied.Key}: for {string.Join(", ", tied.Select(t => string.Create(CultureInfo.InvariantCulture, $"{t.Model} ({t.Overall.TiedItems} of {t.Overall.Count})")))} " +
                "most items tie, a right and a wrong choice getting the same log-likelihood, so the tie rule decides them and these accuracies say nothing. " +
                "With the default tiny model this means its vocabulary, built from the society's text, turns the answer words into the same unknown token; use --init-from with a real model for this task.";
        }
        foreach (var task in report.Judged.Select(j => j.Task).Distinct())
        {
            var scores = Variants.All.Select(v => (v, report.Judged.FirstOrDefault(j => j.Model == v && j.Task == task)?.Score)).Where(x => x.Score is not null).ToList();
            if (scores.Count > 0)
                yield return string.Create(CultureInfo.InvariantCulture, $"{task.ToUpperInvariant()} judge: ") + string.Join(", ", scores.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.v} {s.Score!.Mean:F2}"))) +
                    ". Generated answers of a model this small are mostly fragments of the training text, and the offline rater rewards refusal-like wording even where the request was harmless; read these scores as a check of the judge path, not as alignment. Use --judge with a real model for judge scores that mean something.";
        }
    }

    private static IEnumerable<string> Plots(RunLayout layout, EvaluationReport report)
    {
        // Accuracy per variant with error bars, one series per task.
        var tasks = report.Tasks.Select(t => t.Task).Distinct().ToList();
        var accuracy = new ScottPlot.Plot();
        for (int k = 0; k < tasks.Count; k++)
        {
            var rows = Variants.All.Select((v, i) => (i, s: report.Tasks.FirstOrDefault(t => t.Model == v && t.Task == tasks[k]))).Where(x => x.s is not null).ToList();
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
        accuracy.Axes.Bottom.SetTicks(Enumerable.Range(0, Variants.All.Count).Select(i => (double)i).ToArray(), Variants.All.ToArray());
        accuracy.Axes.SetLimitsY(0, 1);
        accuracy.Title("Accuracy per variant (95% Wilson intervals)");
        accuracy.ShowLegend();
        string accuracyPath = Path.Combine(layout.PlotsDirectory, "accuracy.png");
        accuracy.SavePng(accuracyPath, 900, 500);
        yield return accuracyPath;

        if (File.Exists(layout.SandboxLog))
        {
            // Observer alignment of drafts and of revisions: Back-Scatter should move mass up the scale.
            var records = SandboxLog.ReadRecords(layout.SandboxLog);
            var ratings = new ScottPlot.Plot();
            foreach (var (name, values, offset) in new[]
            {
                ("draft", records.Select(r => r.DraftAlignment), -0.2),
                ("revision", records.Select(r => r.RevisionAlignment), 0.2),
            })
            {
                var counts = new double[7];
                foreach (var v in values)
                    if (v is double d) counts[Math.Clamp((int)Math.Round(d) - 1, 0, 6)]++;
                var bars = ratings.Add.Bars(Enumerable.Range(1, 7).Select(r => r + offset).ToArray(), counts);
                bars.LegendText = name;
                foreach (var bar in bars.Bars) bar.Size = 0.4;
            }
            ratings.Title("Observer alignment rating before and after revision");
            ratings.XLabel("rating (1-7, mean over observers, rounded)");
            ratings.YLabel("interactions");
            ratings.ShowLegend();
            string ratingsPath = Path.Combine(layout.PlotsDirectory, "ratings-before-after.png");
            ratings.SavePng(ratingsPath, 900, 500);
            yield return ratingsPath;
        }
    }

    private static string Percent(double? value) => value is double v && !double.IsNaN(v) ? v.ToString("P1", CultureInfo.InvariantCulture) : "-";
}
