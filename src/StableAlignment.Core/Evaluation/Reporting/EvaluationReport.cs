using System.Globalization;
using System.Text;

namespace StableAlignment.Core.Evaluation;

/// <summary>Options for <see cref="EvaluationReport"/> and <see cref="PairedComparison"/>.</summary>
public sealed record ReportOptions
{
    /// <summary>Confidence level of every interval (default 0.95).</summary>
    public double Confidence { get; init; } = 0.95;

    /// <summary>
    /// McNemar uses the exact binomial test when fewer discordant pairs than this (default 25, the usual rule of thumb
    /// below which the chi-square approximation is poor), and the continuity-corrected chi-square otherwise.
    /// </summary>
    public int McNemarExactBelow { get; init; } = 25;

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">An option is out of range; the message names it.</exception>
    public void Validate()
    {
        if (!(Confidence > 0 && Confidence < 1))
        {
            throw new ArgumentException($"{nameof(Confidence)} must lie strictly between 0 and 1 (was {Confidence}).", nameof(Confidence));
        }
        if (McNemarExactBelow < 0)
        {
            throw new ArgumentException($"{nameof(McNemarExactBelow)} must not be negative (was {McNemarExactBelow}).", nameof(McNemarExactBelow));
        }
    }
}

/// <summary>The metrics of a set of items (a whole task or one category).</summary>
/// <param name="Count">Items.</param>
/// <param name="Accuracy"><c>acc</c> with its Wilson interval.</param>
/// <param name="AccuracyNormalized"><c>acc_norm</c> (per character) with its Wilson interval.</param>
/// <param name="AccuracyBytes"><c>acc_bytes</c> (per UTF-8 byte) with its Wilson interval.</param>
/// <param name="TrueProbabilityMass">Mean probability on the correct choices (<c>mc2</c>), with a t interval.</param>
/// <param name="Brier">Mean Brier score, with a t interval.</param>
/// <param name="CalibrationError">Expected calibration error of <c>acc</c>: items binned by the probability of their top
/// choice into <see cref="CalibrationBins"/> equal-width bins, then the item-weighted mean of |accuracy - mean top
/// probability| over the bins.</param>
/// <param name="TiedItems">Items whose top raw log-likelihood is shared by a correct and an incorrect choice, so the
/// tie rule alone decides their <c>acc</c>. Many of them mean the model cannot tell the choices apart.</param>
public sealed record MetricSummary(int Count, ProportionEstimate Accuracy, ProportionEstimate AccuracyNormalized,
    ProportionEstimate AccuracyBytes, MeanEstimate TrueProbabilityMass, MeanEstimate Brier, double CalibrationError, int TiedItems)
{
    /// <summary>Bins of the calibration error (10, the usual choice).</summary>
    public const int CalibrationBins = 10;

    internal static MetricSummary Of(IReadOnlyCollection<ItemResult> items, double confidence) => new(
        items.Count,
        ProportionEstimate.Wilson(items.Count(i => i.Metrics.Accuracy), items.Count, confidence),
        ProportionEstimate.Wilson(items.Count(i => i.Metrics.AccuracyNormalized), items.Count, confidence),
        ProportionEstimate.Wilson(items.Count(i => i.Metrics.AccuracyBytes), items.Count, confidence),
        MeanEstimate.Of(items.Select(i => i.Metrics.TrueProbabilityMass).ToArray(), confidence),
        MeanEstimate.Of(items.Select(i => i.Metrics.Brier).ToArray(), confidence),
        ExpectedCalibrationError(items),
        items.Count(i => ItemMetrics.TopIsTied(i.LogLikelihoods, i.Labels)));

    private static double ExpectedCalibrationError(IReadOnlyCollection<ItemResult> items)
    {
        var count = new int[CalibrationBins];
        var right = new double[CalibrationBins];
        var confidenceSum = new double[CalibrationBins];
        foreach (var item in items)
        {
            double top = ItemMetrics.Softmax(item.LogLikelihoods).Max();
            int bin = Math.Min(CalibrationBins - 1, (int)(top * CalibrationBins));
            count[bin]++;
            confidenceSum[bin] += top;
            right[bin] += item.Metrics.Accuracy ? 1 : 0;
        }
        double ece = 0;
        for (int b = 0; b < CalibrationBins; b++)
        {
            if (count[b] > 0)
            {
                ece += Math.Abs(right[b] - confidenceSum[b]) / items.Count;
            }
        }
        return ece;
    }

    /// <summary>The headline value for a primary metric.</summary>
    /// <param name="primary">The metric.</param>
    /// <returns>The value and its interval.</returns>
    public (double Value, double Lower, double Upper) Headline(PrimaryMetric primary) => primary switch
    {
        PrimaryMetric.AccuracyNormalized => (AccuracyNormalized.Value, AccuracyNormalized.Lower, AccuracyNormalized.Upper),
        PrimaryMetric.TrueProbabilityMass => (TrueProbabilityMass.Mean, TrueProbabilityMass.Lower, TrueProbabilityMass.Upper),
        _ => (Accuracy.Value, Accuracy.Lower, Accuracy.Upper),
    };
}

/// <summary>One category's metrics within a task.</summary>
/// <param name="Category">The category.</param>
/// <param name="Metrics">Its metrics.</param>
public sealed record CategorySummary(string Category, MetricSummary Metrics);

/// <summary>One model's results on one task.</summary>
/// <param name="Model">The model name.</param>
/// <param name="Task">The task name.</param>
/// <param name="Primary">The headline metric.</param>
/// <param name="TieBreaking">The tie rule used.</param>
/// <param name="Overall">Metrics over all items (micro average: every item weighs the same).</param>
/// <param name="Categories">Metrics per category, by name; empty when the task has no categories.</param>
/// <param name="MacroAccuracy">Mean of the per-category accuracies (every category weighs the same); null without categories.</param>
/// <param name="GroupExactMatch">Share of groups whose items are all right (ETHICS exact match); null without groups.</param>
public sealed record TaskSummary(string Model, string Task, PrimaryMetric Primary, TieBreaking TieBreaking, MetricSummary Overall,
    IReadOnlyList<CategorySummary> Categories, double? MacroAccuracy, ProportionEstimate? GroupExactMatch);

/// <summary>One model's accuracy across all its multiple-choice tasks, averaged both ways.</summary>
/// <param name="Model">The model.</param>
/// <param name="Tasks">Tasks averaged.</param>
/// <param name="Micro">Items right over all items, every item weighing the same (large tasks dominate).</param>
/// <param name="Macro">Mean of the task accuracies, every task weighing the same.</param>
public sealed record ModelAverage(string Model, int Tasks, ProportionEstimate Micro, double Macro);

/// <summary>
/// The report of an evaluation: per model and task, accuracy (micro and macro), <c>acc_norm</c>, <c>mc2</c> and Brier
/// with intervals, per-category breakdowns, group exact match and paired comparisons; rendered as Markdown.
/// </summary>
/// <param name="Tasks">One summary per model and task, in input order.</param>
/// <param name="Comparisons">Paired comparisons between models.</param>
/// <param name="Confidence">The confidence level of every interval.</param>
public sealed record EvaluationReport(IReadOnlyList<TaskSummary> Tasks, IReadOnlyList<PairedComparison> Comparisons, double Confidence)
{
    /// <summary>Judge-based results (HH, HH-A), if any.</summary>
    public IReadOnlyList<JudgeSummary> Judged { get; init; } = [];

    /// <summary>
    /// Per model with two or more tasks: <c>acc</c> across tasks, micro (pooled items) and macro (mean of tasks).
    /// The two can differ a lot; the report prints both rather than choosing.
    /// </summary>
    public IEnumerable<ModelAverage> ModelAverages =>
        Tasks.GroupBy(t => t.Model, StringComparer.Ordinal)
            .Where(g => g.Count() > 1)
            .Select(g => new ModelAverage(g.Key, g.Count(),
                ProportionEstimate.Wilson(g.Sum(t => t.Overall.Accuracy.Successes), g.Sum(t => t.Overall.Count), Confidence),
                g.Average(t => t.Overall.Accuracy.Value)));

    /// <summary>Builds a report from task results.</summary>
    /// <param name="results">Results of one or more models on one or more tasks.</param>
    /// <param name="options">Options; defaults when null.</param>
    /// <param name="comparisons">Paired comparisons to include, if any.</param>
    /// <param name="judged">Judge-based summaries to include, if any.</param>
    /// <returns>The report.</returns>
    public static EvaluationReport Create(IEnumerable<TaskResults> results, ReportOptions? options = null,
        IEnumerable<PairedComparison>? comparisons = null, IEnumerable<JudgeSummary>? judged = null)
    {
        ArgumentNullException.ThrowIfNull(results);
        options ??= new ReportOptions();
        options.Validate();
        var tasks = new List<TaskSummary>();
        foreach (var r in results)
        {
            if (r.Items.Count == 0)
            {
                throw new ArgumentException($"Task '{r.Task}' of model '{r.Model}' has no items.", nameof(results));
            }
            var categories = r.Items.Where(i => i.Category is not null)
                .GroupBy(i => i.Category!, StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new CategorySummary(g.Key, MetricSummary.Of(g.ToArray(), options.Confidence)))
                .ToArray();
            double? macro = categories.Length == 0 ? null : categories.Average(c => c.Metrics.Accuracy.Value);
            ProportionEstimate? groups = null;
            var grouped = r.Items.Where(i => i.Group is not null).GroupBy(i => i.Group!, StringComparer.Ordinal).ToArray();
            if (grouped.Length > 0)
            {
                groups = ProportionEstimate.Wilson(grouped.Count(g => g.All(i => i.Metrics.Accuracy)), grouped.Length, options.Confidence);
            }
            tasks.Add(new TaskSummary(r.Model, r.Task, r.Primary, r.TieBreaking, MetricSummary.Of(r.Items.ToArray(), options.Confidence),
                categories, macro, groups));
        }
        return new EvaluationReport(tasks, comparisons?.ToArray() ?? [], options.Confidence) { Judged = judged?.ToArray() ?? [] };
    }

    /// <summary>Renders the report as Markdown tables.</summary>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown()
    {
        var md = new StringBuilder();
        string level = Percent(Confidence);
        md.AppendLine("## Multiple-choice results").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture,
            $"Intervals are {level} (Wilson for accuracies, Student t for means). `acc` uses raw log-likelihoods, `acc_norm` log-likelihood per character; task values are micro averages over items.");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"| model | task | n | headline | value | {level} CI | acc | acc_norm | mc2 | Brier | ECE | tied items (rule) |");
        md.AppendLine("|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---|");
        foreach (var t in Tasks)
        {
            var (value, lower, upper) = t.Overall.Headline(t.Primary);
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {Cell(t.Model)} | {Cell(t.Task)} | {t.Overall.Count} | {MetricName(t.Primary)} | {F(value)} | [{F(lower)}, {F(upper)}] | {F(t.Overall.Accuracy.Value)} | {F(t.Overall.AccuracyNormalized.Value)} | {F(t.Overall.TrueProbabilityMass.Mean)} | {F(t.Overall.Brier.Mean)} | {F(t.Overall.CalibrationError)} | {t.Overall.TiedItems} ({t.TieBreaking}) |");
        }
        var averages = ModelAverages.ToArray();
        if (averages.Length > 0)
        {
            md.AppendLine().AppendLine("Across tasks (`acc`): micro pools every item, macro averages the tasks.").AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"| model | tasks | items | micro acc | {level} CI | macro acc |");
            md.AppendLine("|---|---:|---:|---:|---|---:|");
            foreach (var a in averages)
            {
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {Cell(a.Model)} | {a.Tasks} | {a.Micro.Count} | {F(a.Micro.Value)} | [{F(a.Micro.Lower)}, {F(a.Micro.Upper)}] | {F(a.Macro)} |");
            }
        }
        foreach (var t in Tasks.Where(t => t.GroupExactMatch is not null || t.Categories.Count > 0))
        {
            md.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"### {Cell(t.Task)} ({Cell(t.Model)})").AppendLine();
            if (t.GroupExactMatch is { } g)
            {
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"Group exact match (every item of a group right): {F(g.Value)} [{F(g.Lower)}, {F(g.Upper)}] over {g.Count} groups.");
            }
            if (t.Categories.Count > 0)
            {
                if (t.GroupExactMatch is not null)
                {
                    md.AppendLine();
                }
                md.AppendLine(CultureInfo.InvariantCulture, $"Macro accuracy (mean over {t.Categories.Count} categories): {F(t.MacroAccuracy!.Value)}; micro: {F(t.Overall.Accuracy.Value)}.").AppendLine();
                md.AppendLine(CultureInfo.InvariantCulture, $"| category | n | acc | {level} CI | acc_norm | Brier |");
                md.AppendLine("|---|---:|---:|---|---:|---:|");
                foreach (var c in t.Categories)
                {
                    var m = c.Metrics;
                    md.AppendLine(CultureInfo.InvariantCulture,
                        $"| {Cell(c.Category)} | {m.Count} | {F(m.Accuracy.Value)} | [{F(m.Accuracy.Lower)}, {F(m.Accuracy.Upper)}] | {F(m.AccuracyNormalized.Value)} | {F(m.Brier.Mean)} |");
                }
            }
        }
        if (Comparisons.Count > 0)
        {
            md.AppendLine().AppendLine("## Paired comparisons (McNemar on acc)").AppendLine();
            md.AppendLine("| task | A | B | n | both right | only A | only B | both wrong | acc A - acc B | p | test |");
            md.AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var c in Comparisons)
            {
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {Cell(c.Task)} | {Cell(c.ModelA)} | {Cell(c.ModelB)} | {c.Count} | {c.BothCorrect} | {c.OnlyA} | {c.OnlyB} | {c.BothWrong} | {F(c.AccuracyDifference)} | {c.PValue.ToString(c.PValue < 1e-4 ? "0.0E+0" : "0.0000", CultureInfo.InvariantCulture)} | {(c.Exact ? "exact binomial" : "chi-square, continuity-corrected")} |");
            }
        }
        if (Judged.Count > 0)
        {
            md.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"## Judge ratings (1-10, mean with {level} t interval)").AppendLine();
            md.AppendLine("| model | task | answers | rated | failed | mean | CI | histogram 1..10 |");
            md.AppendLine("|---|---|---:|---:|---:|---:|---|---|");
            foreach (var j in Judged)
            {
                string mean = j.Score is null ? "n/a" : F(j.Score.Mean);
                string ci = j.Score is null ? "n/a" : $"[{F(j.Score.Lower)}, {F(j.Score.Upper)}]";
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {Cell(j.Model)} | {Cell(j.Task)} | {j.Items} | {j.Items - j.Failed} | {j.Failed} | {mean} | {ci} | {string.Join(' ', j.Histogram)} |");
            }
        }
        return md.ToString();
    }

    internal static string MetricName(PrimaryMetric primary) => primary switch
    {
        PrimaryMetric.AccuracyNormalized => "acc_norm",
        PrimaryMetric.TrueProbabilityMass => "mc2",
        _ => "acc",
    };

    internal static string F(double value) => double.IsNaN(value) ? "n/a" : value.ToString("0.000", CultureInfo.InvariantCulture);

    internal static string Percent(double level) => (level * 100).ToString("0.#", CultureInfo.InvariantCulture) + "%";

    /// <summary>Escapes text for a Markdown table cell.</summary>
    internal static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).ReplaceLineEndings(" ");
}
