using System.Globalization;
using System.Text;

namespace StableAlignment.Core.Evaluation;

/// <summary>
/// The models an ablation compares, as the paper's table lays them out: the starting model, the baselines, and the
/// stages of the method, each stage adding to the one before.
/// </summary>
/// <param name="Variants">Every model, in the table's row order.</param>
/// <param name="Baselines">The baselines the full method is compared with (for example SFT, DPO, RRHF).</param>
/// <param name="Stages">The method's variants in stage order; the last one is the full method.</param>
public sealed record AblationDesign(IReadOnlyList<string> Variants, IReadOnlyList<string> Baselines, IReadOnlyList<string> Stages)
{
    /// <summary>The model before any training, if it is one of the variants (it takes part in no claim).</summary>
    public string? Start { get; init; }

    /// <summary>Variant to the name of the paper's row it corresponds to (see the paper's Table 1), for the side-by-side table.</summary>
    public IReadOnlyDictionary<string, string> PaperRows { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The judged task of plain prompts (HH). Default <c>hh</c>.</summary>
    public string PlainJudgeTask { get; init; } = "hh";

    /// <summary>The judged task of adversarially framed prompts (HH-A), paired prompt by prompt with <see cref="PlainJudgeTask"/>. Default <c>hh-a</c>.</summary>
    public string AdversarialJudgeTask { get; init; } = "hh-a";

    /// <summary>The full method: the last stage.</summary>
    public string Full => Stages[^1];

    /// <summary>The paired comparisons the report makes: the full method against each baseline, then each stage against the one before.</summary>
    /// <returns>(A, B) pairs.</returns>
    public IEnumerable<(string A, string B)> ComparedPairs()
    {
        foreach (string baseline in Baselines) yield return (Full, baseline);
        for (int i = 1; i < Stages.Count; i++) yield return (Stages[i], Stages[i - 1]);
    }

    /// <summary>Throws an <see cref="ArgumentException"/> unless the start, the baselines and every stage are among the variants.</summary>
    /// <returns>This instance, for chaining.</returns>
    public AblationDesign Validate()
    {
        ArgumentNullException.ThrowIfNull(Variants);
        ArgumentNullException.ThrowIfNull(Baselines);
        ArgumentNullException.ThrowIfNull(Stages);
        if (Stages.Count == 0) throw new ArgumentException("An ablation needs at least one stage variant.", nameof(Stages));
        foreach (string name in Stages.Concat(Baselines).Concat(Start is null ? [] : [Start]))
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
public sealed record AblationTrainingRow(string Variant, int Steps, double Seconds, double? ValidationRankingAccuracy)
{
    /// <summary>The training seed, when the run had several.</summary>
    public int? Seed { get; init; }
}

/// <summary>
/// The report of an ablation in the shape of the paper's table: rows the variants, columns the benchmarks (with
/// intervals, or mean ± standard deviation over training seeds), the paper's own figures for the same rows, the
/// robustness of each variant to adversarial framings (HH against HH-A), a verdict on each of the paper's claims with
/// the paired test behind it, then the training table, plots and every task in detail. Everything is computed from
/// per-item results, so a report can be redone without the models.
/// </summary>
public sealed partial class AblationReport
{
    private readonly ReportOptions _options;

    private AblationReport(IReadOnlyList<SeedResults> seeds, EvaluationReport evaluation, AblationDesign design, ReportOptions options)
    {
        Seeds = seeds;
        Evaluation = evaluation;
        Design = design;
        _options = options;
        Claims = EvaluateClaims();
    }

    /// <summary>The results of every training seed, in order.</summary>
    public IReadOnlyList<SeedResults> Seeds { get; }

    /// <summary>The first seed's per-task summaries, paired comparisons (McNemar) and judge summaries.</summary>
    public EvaluationReport Evaluation { get; }

    /// <summary>The compared variants.</summary>
    public AblationDesign Design { get; }

    /// <summary>The paper's claims, each with its paired tests and outcome.</summary>
    public IReadOnlyList<ClaimResult> Claims { get; }

    /// <summary>Builds the report of one training seed from its per-item results and judge summaries (no paired judge tests).</summary>
    /// <param name="results">Per-item results of every variant.</param>
    /// <param name="judged">Judge summaries, if any.</param>
    /// <param name="design">The compared variants.</param>
    /// <param name="options">Interval and test options; defaults when null.</param>
    /// <returns>The report.</returns>
    public static AblationReport Create(IReadOnlyList<TaskResults> results, IEnumerable<JudgeSummary> judged, AblationDesign design, ReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(judged);
        return Create([new SeedResults(0, results, [.. judged], [])], design, options);
    }

    /// <summary>Builds the report over one or more training seeds.</summary>
    /// <param name="seeds">Each seed's results, on the same data and items.</param>
    /// <param name="design">The compared variants.</param>
    /// <param name="options">Interval and test options; defaults when null.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">No seeds, or a design that names unknown variants.</exception>
    public static AblationReport Create(IReadOnlyList<SeedResults> seeds, AblationDesign design, ReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        ArgumentNullException.ThrowIfNull(design);
        if (seeds.Count == 0) throw new ArgumentException("A report needs the results of at least one seed.", nameof(seeds));
        design.Validate();
        options ??= new ReportOptions();
        options.Validate();
        var first = seeds[0];
        var comparisons = new List<PairedComparison>();
        foreach (var task in first.Results.Select(r => r.Task).Distinct())
        {
            TaskResults? Of(string variant) => first.Results.FirstOrDefault(r => r.Task == task && r.Model == variant);
            foreach (var (a, b) in design.ComparedPairs())
                if (Of(a) is { } ra && Of(b) is { } rb) comparisons.Add(PairedComparison.McNemar(ra, rb, options));
        }
        return new AblationReport(seeds, EvaluationReport.Create(first.Results, options, comparisons, first.Judged), design, options);
    }

    /// <summary>
    /// The main table: rows the variants, columns the judge scores (HH, HH-A), held-out ranking accuracy and every other
    /// task. With one seed each cell is the value with its interval; with several, the mean ± standard deviation of
    /// the seeds' values.
    /// </summary>
    /// <returns>A Markdown table.</returns>
    public string SeedTable() => Seeds.Count == 1 ? SingleSeedTable(Seeds[0]) : AcrossSeedsTable();

    private IReadOnlyList<string> JudgedTasks => Seeds[0].Judged.Select(j => j.Task).Distinct().ToList();

    private IReadOnlyList<string> MultipleChoiceTasks =>
        Seeds[0].Results.Select(r => r.Task).Distinct().OrderBy(t => t == RankingTaskName ? 0 : 1).ThenBy(t => t, StringComparer.Ordinal).ToList();

    private static string JudgeHeader(string task) => $"{task.ToUpperInvariant()} judge (1-10)";

    private static string TaskHeader(string task) => task == RankingTaskName ? "held-out ranking acc" : $"{task} acc";

    private static string Header(IEnumerable<string> columns)
    {
        var list = columns.ToList();
        return "| model | " + string.Join(" | ", list) + " |\n|---|" + string.Concat(Enumerable.Repeat("---:|", list.Count)) + "\n";
    }

    private string SingleSeedTable(SeedResults seed)
    {
        var report = seed == Seeds[0] ? Evaluation : EvaluationReport.Create(seed.Results, _options, [], seed.Judged);
        var sb = new StringBuilder(Header(JudgedTasks.Select(JudgeHeader).Concat(MultipleChoiceTasks.Select(TaskHeader))));
        foreach (var variant in Design.Variants)
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {variant} |");
            foreach (var j in JudgedTasks)
            {
                var s = seed.Judged.FirstOrDefault(x => x.Model == variant && x.Task == j);
                sb.Append(s?.Score is { } m ? string.Create(CultureInfo.InvariantCulture, $" {m.Mean:F2} [{m.Lower:F2}, {m.Upper:F2}] (n={m.Count}) |") : " - |");
            }
            foreach (var t in MultipleChoiceTasks)
            {
                var s = report.Tasks.FirstOrDefault(x => x.Model == variant && x.Task == t);
                sb.Append(s is null ? " - |" : string.Create(CultureInfo.InvariantCulture,
                    $" {s.Overall.Accuracy.Value:F3} [{s.Overall.Accuracy.Lower:F3}, {s.Overall.Accuracy.Upper:F3}] (n={s.Overall.Count}) |"));
            }
            sb.AppendLine();
        }
        return sb.ToString();
    }

    private string AcrossSeedsTable()
    {
        var sb = new StringBuilder(Header(JudgedTasks.Select(JudgeHeader).Concat(MultipleChoiceTasks.Select(TaskHeader))));
        foreach (var variant in Design.Variants)
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {variant} |");
            foreach (var j in JudgedTasks)
                sb.Append(MeanSd(Seeds.Select(s => s.Judged.FirstOrDefault(x => x.Model == variant && x.Task == j)?.Score?.Mean), "F2"));
            foreach (var t in MultipleChoiceTasks)
                sb.Append(MeanSd(Seeds.Select(s => Accuracy(s, variant, t)), "F3"));
            sb.AppendLine();
        }
        return sb.ToString();
    }

    private static double? Accuracy(SeedResults seed, string variant, string task) =>
        seed.Results.FirstOrDefault(r => r.Model == variant && r.Task == task) is { Items.Count: > 0 } r
            ? r.Items.Count(i => i.Metrics.Accuracy) / (double)r.Items.Count
            : null;

    private static string MeanSd(IEnumerable<double?> perSeed, string format)
    {
        var values = perSeed.OfType<double>().ToList();
        if (values.Count == 0) return " - |";
        double mean = values.Average();
        double sd = values.Count < 2 ? double.NaN : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
        return " " + mean.ToString(format, CultureInfo.InvariantCulture) + " ± " + sd.ToString(format, CultureInfo.InvariantCulture) +
            string.Create(CultureInfo.InvariantCulture, $" (k={values.Count}) |");
    }

    /// <summary>The paper's own figures (LLaMA-7B, Table 1: mean and standard deviation) for the rows that correspond to the variants.</summary>
    /// <returns>A Markdown table, or an empty string when no variant names a paper row.</returns>
    public string PaperTable()
    {
        var rows = Design.Variants.Select(v => (Variant: v, Row: PaperResults.Find(Design.PaperRows.GetValueOrDefault(v)))).Where(r => r.Row is not null).ToList();
        if (rows.Count == 0) return "";
        var sb = new StringBuilder("| model | paper's row (LLaMA-7B) | " + string.Join(" | ", PaperResults.Benchmarks) + " |\n|---|---|" +
            string.Concat(Enumerable.Repeat("---:|", PaperResults.Benchmarks.Count)) + "\n");
        foreach (var (variant, row) in rows)
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {variant} | {row!.Model} |");
            foreach (var (mean, sd) in row.Values) sb.Append(CultureInfo.InvariantCulture, $" {mean:0.00} ± {sd:0.0} |");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    /// <summary>
    /// Robustness to adversarial framings, per variant: the mean judge score on plain prompts (HH) and on the same
    /// prompts framed (HH-A), the drop between them paired prompt by prompt (averaged over seeds, with a t interval), and
    /// the share of degenerate answers.
    /// </summary>
    /// <returns>A Markdown table, or an empty string without both judged tasks.</returns>
    public string DropTable()
    {
        string plain = Design.PlainJudgeTask, framed = Design.AdversarialJudgeTask;
        if (!JudgedTasks.Contains(plain) || !JudgedTasks.Contains(framed)) return "";
        var sb = new StringBuilder($"| model | {plain.ToUpperInvariant()} | {framed.ToUpperInvariant()} | drop ({plain.ToUpperInvariant()} - {framed.ToUpperInvariant()}), paired | degenerate answers {plain.ToUpperInvariant()} / {framed.ToUpperInvariant()} |\n|---|---:|---:|---:|---:|\n");
        foreach (var variant in Design.Variants)
        {
            double? Mean(string task) => Seeds.Select(s => s.Judged.FirstOrDefault(j => j.Model == variant && j.Task == task)?.Score?.Mean).OfType<double>().DefaultIfEmpty(double.NaN).Average();
            var drops = Drops(variant);
            string drop = drops.Count == 0 ? "-" : DescribeMean(MeanEstimate.Of([.. drops.Values], _options.Confidence));
            sb.Append(CultureInfo.InvariantCulture, $"| {variant} | {Mean(plain):F2} | {Mean(framed):F2} | {drop} | {DegenerateShare(variant, plain)} / {DegenerateShare(variant, framed)} |").AppendLine();
        }
        return sb.ToString();
    }

    private string DegenerateShare(string variant, string task) =>
        DegenerateFraction(variant, task) is { } share ? string.Create(CultureInfo.InvariantCulture, $"{100.0 * share:0}%") : "-";

    /// <summary>The share of a variant's answers to a judged task that are degenerate, over every seed; null when none were judged.</summary>
    private double? DegenerateFraction(string variant, string task)
    {
        var summaries = Seeds.Select(s => s.Judged.FirstOrDefault(j => j.Model == variant && j.Task == task)).OfType<JudgeSummary>().ToList();
        int items = summaries.Sum(s => s.Items);
        return items == 0 ? null : (double)summaries.Sum(s => s.Degenerate) / items;
    }

    private static string DescribeMean(MeanEstimate m) => double.IsNaN(m.Lower)
        ? string.Create(CultureInfo.InvariantCulture, $"{m.Mean:+0.00;-0.00} (n={m.Count})")
        : string.Create(CultureInfo.InvariantCulture, $"{m.Mean:+0.00;-0.00} [{m.Lower:+0.00;-0.00}, {m.Upper:+0.00;-0.00}] (n={m.Count})");

    /// <summary>The verdict, one statement per line: each claim with its tests, then what the benchmarks can and cannot show here.</summary>
    /// <returns>The statements.</returns>
    public IEnumerable<string> Verdict()
    {
        foreach (var claim in Claims)
        {
            yield return claim.Describe();
            if (Limits(claim) is { } limits) yield return limits;
        }
        var report = Evaluation;
        foreach (var tied in report.Tasks.Where(t => t.Task != RankingTaskName && 2 * t.Overall.TiedItems > t.Overall.Count).GroupBy(t => t.Task))
        {
            yield return $"{tied.Key}: for {string.Join(", ", tied.Select(t => string.Create(CultureInfo.InvariantCulture, $"{t.Model} ({t.Overall.TiedItems} of {t.Overall.Count})")))} " +
                "most items tie, a right and a wrong choice getting the same log-likelihood, so the tie rule decides them and these accuracies say nothing. " +
                "With the default tiny model this means its vocabulary, built from the society's text, turns the answer words into the same unknown token; use --init-from with a real model for this task.";
        }
        // Without any score there is no claim to test on a judged task; say why instead of leaving it out silently.
        foreach (var failed in report.Judged.GroupBy(j => j.Task).Where(g => g.All(j => j.Score is null)))
        {
            yield return string.Create(CultureInfo.InvariantCulture,
                $"{failed.Key.ToUpperInvariant()} judge: every rating failed ({failed.Sum(j => j.Failed)} of {failed.Sum(j => j.Items)} answers), so there are no judge scores. ") +
                "The judge's replies and why each could not be read are in evaluation/judged.jsonl (raw_reply, failure): check that the judge model follows the reply format.";
        }
    }

    /// <summary>The whole report as Markdown.</summary>
    /// <param name="training">The training table's rows; empty leaves the table out.</param>
    /// <param name="curves">Links to training curves as (label, relative path).</param>
    /// <param name="plots">Relative paths of the plots to show; empty shows <paramref name="plotsNote"/> instead.</param>
    /// <param name="plotsNote">Why there are no plots, when there are none.</param>
    /// <param name="judgeNotes">What the judge is and how it was validated, one Markdown line each; empty leaves the section out.</param>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown(IReadOnlyList<AblationTrainingRow> training, IReadOnlyList<(string Label, string Path)> curves,
        IReadOnlyList<string> plots, string plotsNote, IReadOnlyList<string> judgeNotes)
    {
        ArgumentNullException.ThrowIfNull(training);
        ArgumentNullException.ThrowIfNull(curves);
        ArgumentNullException.ThrowIfNull(plots);
        ArgumentNullException.ThrowIfNull(judgeNotes);
        var md = new StringBuilder();
        md.AppendLine("# Stable Alignment run report").AppendLine();
        md.AppendLine("A tiny LLaMA-style model trained on data from the simulated society, compared as in the paper's table: the starting model, ")
          .AppendLine("the baselines trained on the same data with the same number of optimizer steps, and Stable Alignment's stages. ")
          .AppendLine(Seeds.Count == 1
              ? "One training seed: accuracies are proportions with 95% Wilson intervals; judge scores are means on the 1-10 scale with 95% t intervals."
              : string.Create(CultureInfo.InvariantCulture, $"{Seeds.Count} training seeds ({string.Join(", ", Seeds.Select(s => s.Seed))}) on the same data: each cell is the mean ± standard deviation of the seeds' values (k = seeds); the intervals of each seed are under Per seed."))
          .AppendLine();
        md.AppendLine(SeedTable()).AppendLine();
        string paper = PaperTable();
        if (paper.Length > 0)
        {
            md.AppendLine("The paper's own figures for the same rows (Liu et al. 2023, Table 1; LLaMA-7B models, a GPT-4-class judge, mean ± standard deviation), for a side-by-side of the shape, not of the numbers:").AppendLine();
            md.AppendLine(paper).AppendLine();
        }
        string drops = DropTable();
        if (drops.Length > 0)
        {
            md.AppendLine("## Robustness to adversarial framings").AppendLine();
            md.AppendLine("Each HH-A prompt is the HH prompt of the same index wrapped in a jailbreak-style framing, so the drop is paired prompt by prompt (averaged over seeds; 95% t interval). ")
              .AppendLine("A degenerate answer (see the judge below) gets the minimum score.").AppendLine();
            md.AppendLine(drops).AppendLine();
        }
        md.AppendLine("## Verdict").AppendLine();
        md.AppendLine("Each claim of the paper is tested with paired sign-flip permutation tests on per-item differences (seed-averaged), two-sided; a claim holds when every test is in its direction at p < 0.05.").AppendLine();
        foreach (var line in Verdict()) md.AppendLine("- " + line);
        md.AppendLine();
        if (judgeNotes.Count > 0)
        {
            md.AppendLine("## The judge").AppendLine();
            foreach (var line in judgeNotes) md.AppendLine("- " + line);
            md.AppendLine();
        }
        if (Seeds.Count > 1)
        {
            md.AppendLine("## Per seed").AppendLine();
            foreach (var seed in Seeds) md.AppendLine(CultureInfo.InvariantCulture, $"Seed {seed.Seed}:").AppendLine().AppendLine(SingleSeedTable(seed));
        }
        if (training.Count > 0)
        {
            md.AppendLine("## Training").AppendLine();
            bool seeds = training.Any(t => t.Seed is not null);
            md.AppendLine((seeds ? "| seed " : "") + "| variant | optimizer steps (cumulative) | seconds (cumulative) | held-out ranking accuracy at the end |")
              .AppendLine((seeds ? "|---:" : "") + "|---|---:|---:|---:|");
            foreach (var t in training)
                md.AppendLine(CultureInfo.InvariantCulture, $"{(seeds ? $"| {t.Seed} " : "")}| {t.Variant} | {t.Steps} | {t.Seconds:F0} | {Percent(t.ValidationRankingAccuracy)} |");
            md.AppendLine();
            if (curves.Count > 0) md.AppendLine("Curves: " + string.Join(", ", curves.Select(c => $"[{c.Label}]({c.Path})"))).AppendLine();
        }
        md.AppendLine("## Plots").AppendLine();
        if (plots.Count == 0) md.AppendLine(plotsNote);
        foreach (var plot in plots) md.AppendLine(CultureInfo.InvariantCulture, $"![{Path.GetFileNameWithoutExtension(plot)}]({plot})");
        md.AppendLine();
        // Evaluation.ToMarkdown opens with its own headings; with several seeds, say whose tables they are.
        if (Seeds.Count > 1) md.AppendLine(CultureInfo.InvariantCulture, $"Every task in detail below is seed {Seeds[0].Seed}'s.").AppendLine();
        md.AppendLine(Evaluation.ToMarkdown());
        return md.ToString();
    }

    // The task name of held-out ranking (Training.RankingEvaluation.TaskName); Evaluation does not reference Training.
    internal const string RankingTaskName = "heldout_ranking";

    private static string Percent(double? value) => value is double v && !double.IsNaN(v) ? v.ToString("P1", CultureInfo.InvariantCulture) : "-";
}
