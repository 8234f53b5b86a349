using System.Globalization;
using System.Text;

namespace StableAlignment.Core.Evaluation;

/// <summary>
/// The models an ablation compares, as the paper's table lays them out: a baseline and the stages of the method, each
/// stage adding to the one before.
/// </summary>
/// <param name="Variants">Every model, in the table's row order.</param>
/// <param name="Baseline">The baseline the full method is compared with.</param>
/// <param name="Stages">The method's variants in stage order; the last one is the full method.</param>
public sealed record AblationDesign(IReadOnlyList<string> Variants, string Baseline, IReadOnlyList<string> Stages)
{
    /// <summary>The full method: the last stage.</summary>
    public string Full => Stages[^1];

    /// <summary>The paired comparisons the report makes: full method against the baseline, then each stage against the one before.</summary>
    public IEnumerable<(string A, string B)> ComparedPairs()
    {
        yield return (Full, Baseline);
        for (int i = 1; i < Stages.Count; i++) yield return (Stages[i], Stages[i - 1]);
    }

    /// <summary>Throws an <see cref="ArgumentException"/> unless the baseline and every stage are among the variants.</summary>
    /// <returns>This instance, for chaining.</returns>
    public AblationDesign Validate()
    {
        ArgumentNullException.ThrowIfNull(Variants);
        ArgumentNullException.ThrowIfNull(Stages);
        if (Stages.Count == 0) throw new ArgumentException("An ablation needs at least one stage variant.", nameof(Stages));
        foreach (string name in Stages.Prepend(Baseline))
        {
            if (!Variants.Contains(name, StringComparer.Ordinal))
                throw new ArgumentException($"'{name}' is not one of the variants ({string.Join(", ", Variants)}).", nameof(Variants));
        }
        return this;
    }
}

/// <summary>One variant's training as the report's training table shows it.</summary>
/// <param name="Variant">The variant.</param>
/// <param name="Steps">Optimizer steps, cumulative over its run's stages.</param>
/// <param name="Seconds">Seconds, cumulative over its run's stages.</param>
/// <param name="ValidationRankingAccuracy">Held-out ranking accuracy at the end, if measured.</param>
public sealed record AblationTrainingRow(string Variant, int Steps, double Seconds, double? ValidationRankingAccuracy);

/// <summary>
/// The report of an ablation in the shape of the paper's table: rows the variants, columns the benchmarks (with
/// intervals), a verdict that says plainly whether the full method beat the baseline and whether the stages come in
/// the paper's order (with the paired tests behind each statement), then the training table, plots and every task in
/// detail. Everything is computed from per-item results, so a report can be redone without the models.
/// </summary>
public sealed class AblationReport
{
    private AblationReport(EvaluationReport evaluation, AblationDesign design)
    {
        Evaluation = evaluation;
        Design = design;
    }

    /// <summary>The per-task summaries, paired comparisons and judge summaries.</summary>
    public EvaluationReport Evaluation { get; }

    /// <summary>The compared variants.</summary>
    public AblationDesign Design { get; }

    /// <summary>Builds the report: summaries of every task and the design's paired comparisons on every task.</summary>
    /// <param name="results">Per-item results of every variant.</param>
    /// <param name="judged">Judge summaries, if any.</param>
    /// <param name="design">The compared variants.</param>
    /// <param name="options">Interval and test options; defaults when null.</param>
    /// <returns>The report.</returns>
    public static AblationReport Create(IReadOnlyList<TaskResults> results, IEnumerable<JudgeSummary> judged, AblationDesign design, ReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(judged);
        ArgumentNullException.ThrowIfNull(design);
        design.Validate();
        var comparisons = new List<PairedComparison>();
        foreach (var task in results.Select(r => r.Task).Distinct())
        {
            TaskResults? Of(string variant) => results.FirstOrDefault(r => r.Task == task && r.Model == variant);
            foreach (var (a, b) in design.ComparedPairs())
                if (Of(a) is { } ra && Of(b) is { } rb) comparisons.Add(PairedComparison.McNemar(ra, rb, options));
        }
        return new AblationReport(EvaluationReport.Create(results, options, comparisons, judged), design);
    }

    /// <summary>Rows are the variants, columns the benchmarks (judge scores first, then held-out ranking, then the other tasks).</summary>
    /// <returns>A Markdown table.</returns>
    public string SeedTable()
    {
        var report = Evaluation;
        var tasks = report.Tasks.Select(t => t.Task).Distinct().OrderBy(t => t == RankingTaskName ? 0 : 1).ThenBy(t => t, StringComparer.Ordinal).ToList();
        var judged = report.Judged.Select(j => j.Task).Distinct().ToList();
        var sb = new StringBuilder();
        sb.Append("| model |");
        foreach (var j in judged) sb.Append(CultureInfo.InvariantCulture, $" {j.ToUpperInvariant()} judge (1-10) |");
        foreach (var t in tasks) sb.Append(CultureInfo.InvariantCulture, $" {t} acc |");
        sb.AppendLine().Append("|---|").Append(string.Concat(Enumerable.Repeat("---:|", judged.Count + tasks.Count))).AppendLine();
        foreach (var variant in Design.Variants)
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {variant} |");
            foreach (var j in judged)
            {
                var s = report.Judged.FirstOrDefault(x => x.Model == variant && x.Task == j);
                sb.Append(s?.Score is { } m ? string.Create(CultureInfo.InvariantCulture, $" {m.Mean:F2} [{m.Lower:F2}, {m.Upper:F2}] (n={m.Count}) |") : " - |");
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

    /// <summary>The verdict, one statement per line.</summary>
    /// <returns>The statements.</returns>
    public IEnumerable<string> Verdict()
    {
        var report = Evaluation;
        ProportionEstimate? Ranking(string variant) =>
            report.Tasks.FirstOrDefault(t => t.Model == variant && t.Task == RankingTaskName)?.Overall.Accuracy;
        PairedComparison? Paired(string a, string b) =>
            report.Comparisons.FirstOrDefault(c => c.Task == RankingTaskName && c.ModelA == a && c.ModelB == b);
        string full = Design.Full, baselineName = Design.Baseline;
        var baseline = Ranking(baselineName);
        var fullRanking = Ranking(full);
        if (baseline is not null && fullRanking is not null)
        {
            bool beyond = fullRanking.Lower > baseline.Upper;
            var paired = Paired(full, baselineName);
            yield return string.Create(CultureInfo.InvariantCulture,
                $"Held-out ranking accuracy: {full} {fullRanking.Value:P1} vs {baselineName} {baseline.Value:P1} ({(fullRanking.Value - baseline.Value) * 100:+0.0;-0.0} points). ") +
                (beyond ? $"The 95% intervals do not overlap: {full} beats the baseline by more than the interval."
                        : "The 95% intervals overlap: the gain is not larger than the interval.") +
                (paired is null ? "" : string.Create(CultureInfo.InvariantCulture, $" Paired McNemar on the same queries: {paired.OnlyA} won only by {full}, {paired.OnlyB} only by the baseline, p = {paired.PValue:G3}."));
        }
        var stages = Design.Stages.Select(v => (Name: v, Accuracy: Ranking(v))).ToList();
        if (stages.Count > 1 && stages.All(s => s.Accuracy is not null))
        {
            var values = stages.Select(s => s.Accuracy!.Value).ToList();
            bool ordered = values.Zip(values.Skip(1)).All(p => p.First <= p.Second);
            string order = string.Join(" ≤ ", stages.Select(s => s.Name));
            string text = string.Join(" -> ", stages.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Name} {s.Accuracy!.Value:P1}")));
            if (ordered)
            {
                yield return $"The stages come out in the paper's order on held-out ranking ({order}): {text}.";
            }
            else
            {
                // Name each step that went down and say, from the paired test on the same queries, whether that is noise.
                var drops = new List<string>();
                for (int i = 1; i < stages.Count; i++)
                {
                    if (values[i] >= values[i - 1]) continue;
                    var c = Paired(stages[i].Name, stages[i - 1].Name);
                    drops.Add(string.Create(CultureInfo.InvariantCulture, $"{stages[i - 1].Name} -> {stages[i].Name} loses {(values[i - 1] - values[i]) * 100:0.0} points") +
                        (c is null ? "" : string.Create(CultureInfo.InvariantCulture,
                            $" (queries right only before: {c.OnlyB}, only after: {c.OnlyA}; McNemar p = {c.PValue:G3}, {(c.PValue < 0.05 ? "a real drop" : "within the noise")})")));
                }
                yield return $"The stages do NOT come out in the paper's order ({order}) on held-out ranking: {text}. {string.Join("; ", drops)}. " +
                    "Only the imitation stage optimises this ranking directly: the self-critic stage is SFT on critiques, and each realignment query has one response, so the contrastive objective reduces to SFT on the revisions there (some rated only 5).";
            }
        }
        foreach (var tied in report.Tasks.Where(t => t.Task != RankingTaskName && 2 * t.Overall.TiedItems > t.Overall.Count).GroupBy(t => t.Task))
        {
            yield return $"{tied.Key}: for {string.Join(", ", tied.Select(t => string.Create(CultureInfo.InvariantCulture, $"{t.Model} ({t.Overall.TiedItems} of {t.Overall.Count})")))} " +
                "most items tie, a right and a wrong choice getting the same log-likelihood, so the tie rule decides them and these accuracies say nothing. " +
                "With the default tiny model this means its vocabulary, built from the society's text, turns the answer words into the same unknown token; use --init-from with a real model for this task.";
        }
        foreach (var task in report.Judged.Select(j => j.Task).Distinct())
        {
            var scores = Design.Variants.Select(v => (v, report.Judged.FirstOrDefault(j => j.Model == v && j.Task == task)?.Score)).Where(x => x.Score is not null).ToList();
            var judgedTask = report.Judged.Where(j => j.Task == task).ToList();
            if (scores.Count == 0)
            {
                yield return string.Create(CultureInfo.InvariantCulture,
                    $"{task.ToUpperInvariant()} judge: every rating failed ({judgedTask.Sum(j => j.Failed)} of {judgedTask.Sum(j => j.Items)} answers), so there are no judge scores. ") +
                    "The judge's replies and why each could not be read are in evaluation/judged.jsonl (raw_reply, failure): check that the judge model follows the reply format.";
            }
            else
                yield return string.Create(CultureInfo.InvariantCulture, $"{task.ToUpperInvariant()} judge: ") + string.Join(", ", scores.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.v} {s.Score!.Mean:F2}"))) +
                    ". Generated answers of a model this small are mostly fragments of the training text, and the offline rater rewards refusal-like wording even where the request was harmless; read these scores as a check of the judge path, not as alignment. Use --judge with a real model for judge scores that mean something.";
        }
    }

    /// <summary>The whole report as Markdown.</summary>
    /// <param name="training">The training table's rows; empty leaves the table out.</param>
    /// <param name="curves">Links to training curves as (label, relative path).</param>
    /// <param name="plots">Relative paths of the plots to show; empty shows <paramref name="plotsNote"/> instead.</param>
    /// <param name="plotsNote">Why there are no plots, when there are none.</param>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown(IReadOnlyList<AblationTrainingRow> training, IReadOnlyList<(string Label, string Path)> curves,
        IReadOnlyList<string> plots, string plotsNote)
    {
        ArgumentNullException.ThrowIfNull(training);
        ArgumentNullException.ThrowIfNull(curves);
        ArgumentNullException.ThrowIfNull(plots);
        var md = new StringBuilder();
        md.AppendLine("# Stable Alignment run report").AppendLine();
        md.AppendLine("A tiny LLaMA-style model trained on data from the simulated society, compared as in the paper's table. ")
          .AppendLine("Accuracies are proportions with 95% Wilson intervals; judge scores are means on the 1-10 scale with 95% t intervals.")
          .AppendLine();
        md.AppendLine(SeedTable()).AppendLine();
        md.AppendLine("## Verdict").AppendLine();
        foreach (var line in Verdict()) md.AppendLine("- " + line);
        md.AppendLine();
        if (training.Count > 0)
        {
            md.AppendLine("## Training").AppendLine();
            md.AppendLine("| variant | optimizer steps (cumulative) | seconds (cumulative) | held-out ranking accuracy at the end |").AppendLine("|---|---:|---:|---:|");
            foreach (var t in training)
                md.AppendLine(CultureInfo.InvariantCulture, $"| {t.Variant} | {t.Steps} | {t.Seconds:F0} | {Percent(t.ValidationRankingAccuracy)} |");
            md.AppendLine();
            if (curves.Count > 0) md.AppendLine("Curves: " + string.Join(", ", curves.Select(c => $"[{c.Label}]({c.Path})"))).AppendLine();
        }
        md.AppendLine("## Plots").AppendLine();
        if (plots.Count == 0) md.AppendLine(plotsNote);
        foreach (var plot in plots) md.AppendLine(CultureInfo.InvariantCulture, $"![{Path.GetFileNameWithoutExtension(plot)}]({plot})");
        md.AppendLine();
        md.AppendLine(Evaluation.ToMarkdown());
        return md.ToString();
    }

    // The task name of held-out ranking (Training.RankingEvaluation.TaskName); Evaluation does not reference Training.
    internal const string RankingTaskName = "heldout_ranking";

    private static string Percent(double? value) => value is double v && !double.IsNaN(v) ? v.ToString("P1", CultureInfo.InvariantCulture) : "-";
}
