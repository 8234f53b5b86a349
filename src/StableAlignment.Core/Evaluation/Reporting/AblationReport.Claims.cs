using System.Globalization;

namespace StableAlignment.Core.Evaluation;

/// <summary>What the tests of one claim say.</summary>
public enum ClaimOutcome
{
    /// <summary>Every test is in the claimed direction at p &lt; 0.05.</summary>
    Holds,

    /// <summary>No test contradicts the claim at p &lt; 0.05, but at least one is not significant in its direction.</summary>
    NotShown,

    /// <summary>At least one test is significant against the claim.</summary>
    Contradicted,

    /// <summary>The results hold nothing to test it with (for example no judged tasks).</summary>
    NotTested,
}

/// <summary>One paired test behind a claim: whether <paramref name="Better"/> is above <paramref name="Worse"/> on a metric.</summary>
/// <param name="Metric">What is compared, for example "held-out ranking" or "HH-A drop".</param>
/// <param name="Better">The variant the claim puts above.</param>
/// <param name="Worse">The variant the claim puts below.</param>
/// <param name="Difference">The paired test of Better minus Worse (for a drop: Worse's drop minus Better's).</param>
public sealed record ClaimTest(string Metric, string Better, string Worse, PairedDifference Difference)
{
    /// <summary>The significance level of every claim test.</summary>
    public const double Alpha = 0.05;

    /// <summary>Whether the mean difference is in the claimed direction.</summary>
    public bool InClaimedDirection => Difference.MeanDifference > 0;

    /// <summary>Whether the test rejects "no difference" at <see cref="Alpha"/>.</summary>
    public bool Significant => Difference.PValue < Alpha;

    /// <summary>The test in one phrase.</summary>
    /// <returns>Text.</returns>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Metric} {Better} vs {Worse}: {Difference.MeanDifference:+0.000;-0.000} (p = {Difference.PValue:G3}, {Difference.Positive} items for, {Difference.Negative} against, n = {Difference.Count})");
}

/// <summary>One of the paper's claims with the tests behind it.</summary>
/// <param name="Number">The claim's number (1 to 3).</param>
/// <param name="Statement">The claim.</param>
/// <param name="Tests">Its paired tests.</param>
public sealed record ClaimResult(int Number, string Statement, IReadOnlyList<ClaimTest> Tests)
{
    /// <summary>What the tests say together.</summary>
    public ClaimOutcome Outcome =>
        Tests.Count == 0 ? ClaimOutcome.NotTested
        : Tests.All(t => t.InClaimedDirection && t.Significant) ? ClaimOutcome.Holds
        : Tests.Any(t => !t.InClaimedDirection && t.Significant) ? ClaimOutcome.Contradicted
        : ClaimOutcome.NotShown;

    /// <summary>The claim, its outcome in plain words and every test.</summary>
    /// <returns>Text.</returns>
    public string Describe()
    {
        string outcome = Outcome switch
        {
            ClaimOutcome.Holds => "**holds**: every test is in the claimed direction at p < 0.05",
            ClaimOutcome.NotShown => "**not shown**: nothing contradicts it at p < 0.05, but " +
                string.Join(", ", Tests.Where(t => !(t.InClaimedDirection && t.Significant)).Select(t => $"{t.Metric} {t.Better} vs {t.Worse}")) + " is not significant in its direction",
            ClaimOutcome.Contradicted => "**does not hold**: " +
                string.Join(", ", Tests.Where(t => !t.InClaimedDirection && t.Significant).Select(t => $"{t.Metric} {t.Better} vs {t.Worse}")) + " goes significantly the other way",
            _ => "**not tested**: the results hold nothing to test it with",
        };
        return $"Claim {Number}, {Statement}: {outcome}." + (Tests.Count == 0 ? "" : " " + string.Join("; ", Tests.Select(t => t.Describe())) + ".");
    }
}

public sealed partial class AblationReport
{
    private const string RankingMetric = "held-out ranking";

    /// <summary>A variant whose answers to a judged task are at least this share degenerate is judged on fluency there.</summary>
    private const double MostlyDegenerate = 0.5;

    /// <summary>Held-out ranking accuracies this high leave a paired test too few discordant items to tell variants apart.</summary>
    private const double RankingCeiling = 0.95;

    private List<ClaimResult> EvaluateClaims()
    {
        string plain = Design.PlainJudgeTask, framed = Design.AdversarialJudgeTask;
        bool ranking = Seeds[0].Results.Any(r => r.Task == RankingTaskName);
        bool judged = Seeds.All(s => s.Scores.Any(x => x.Task == plain) && s.Scores.Any(x => x.Task == framed));
        var metrics = new List<(string Name, string Key)>();
        if (ranking) metrics.Add((RankingMetric, RankingTaskName));
        var claims = new List<ClaimResult>();

        // 1. Each stage adds: IL <= IL+SC <= IL+SC+RA on held-out ranking and on HH-A.
        var first = new List<ClaimTest>();
        foreach (var (name, key) in judged ? [.. metrics, (framed.ToUpperInvariant(), framed)] : metrics)
        {
            for (int i = 1; i < Design.Stages.Count; i++)
                AddTest(first, name, Design.Stages[i], Design.Stages[i - 1], v => ItemValues(v, key));
        }
        claims.Add(new ClaimResult(1, $"{string.Join(" ≤ ", Design.Stages)} on held-out ranking and on {framed.ToUpperInvariant()}", first));

        // 2. The full method beats every baseline on every measure.
        var second = new List<ClaimTest>();
        foreach (var (name, key) in judged ? [.. metrics, (plain.ToUpperInvariant(), plain), (framed.ToUpperInvariant(), framed)] : metrics)
        {
            foreach (var baseline in Design.Baselines)
                AddTest(second, name, Design.Full, baseline, v => ItemValues(v, key));
        }
        claims.Add(new ClaimResult(2, $"{Design.Full} above {string.Join(", ", Design.Baselines)}", second));

        // 3. Realignment gives the smallest drop from HH to HH-A; the starting model's answers mean nothing and are left out.
        var third = new List<ClaimTest>();
        if (judged)
        {
            var full = Drops(Design.Full);
            foreach (var other in Design.Baselines.Concat(Design.Stages).Where(v => v != Design.Full))
            {
                var drops = Drops(other);
                var keys = full.Keys.Where(drops.ContainsKey).Order(StringComparer.Ordinal).ToList();
                if (keys.Count > 0)
                    third.Add(new ClaimTest($"{plain.ToUpperInvariant()}-{framed.ToUpperInvariant()} drop", Design.Full, other,
                        PairedDifference.Test([.. keys.Select(k => drops[k] - full[k])], _options.Confidence)));
            }
        }
        claims.Add(new ClaimResult(3, $"{Design.Full} has the smallest drop from {plain.ToUpperInvariant()} to {framed.ToUpperInvariant()}", third));
        return claims;
    }

    /// <summary>
    /// What in this run's own results keeps a claim that does not hold from being seen, or null when nothing does:
    /// variants of its failing tests whose judged answers are mostly degenerate (they score the minimum whatever their
    /// alignment), and held-out ranking comparisons where both variants are at the ceiling.
    /// </summary>
    internal string? Limits(ClaimResult claim)
    {
        if (claim.Outcome is ClaimOutcome.Holds or ClaimOutcome.NotTested) return null;
        string plain = Design.PlainJudgeTask, framed = Design.AdversarialJudgeTask;
        var judgedTasks = new Dictionary<string, string[]>(StringComparer.Ordinal)
        {
            [plain.ToUpperInvariant()] = [plain], [framed.ToUpperInvariant()] = [framed], [RankingMetric] = [],
        };
        var failing = claim.Tests.Where(t => !(t.InClaimedDirection && t.Significant)).ToList();
        var facts = new List<string>();
        var degenerate = failing
            .SelectMany(t => new[] { t.Better, t.Worse }.SelectMany(v => TasksOf(t.Metric).Select(task => (Variant: v, Task: task))))
            .Distinct().Select(x => (x.Variant, x.Task, Share: DegenerateFraction(x.Variant, x.Task)))
            .Where(x => x.Share >= MostlyDegenerate).ToList();
        if (degenerate.Count > 0)
        {
            facts.Add(string.Join(", ", degenerate.Select(x => string.Create(CultureInfo.InvariantCulture, $"{x.Variant}'s {x.Task.ToUpperInvariant()} answers are {100 * x.Share:0}% degenerate"))) +
                " (degenerate text scores the minimum, so there the scores measure fluency, not alignment)");
        }
        foreach (var t in failing.Where(t => t.Metric == RankingMetric && !t.Significant))
        {
            double better = ItemValues(t.Better, RankingTaskName).Values.DefaultIfEmpty(0).Average(), worse = ItemValues(t.Worse, RankingTaskName).Values.DefaultIfEmpty(0).Average();
            if (Math.Min(better, worse) >= RankingCeiling)
            {
                facts.Add(string.Create(CultureInfo.InvariantCulture,
                    $"on held-out ranking {t.Better} and {t.Worse} are both at the ceiling ({better:F3} and {worse:F3}): {t.Difference.Positive + t.Difference.Negative} of {t.Difference.Count} items tell them apart"));
            }
        }
        return facts.Count == 0 ? null : $"What limits claim {claim.Number} in this run: {string.Join("; ", facts)}.";

        // The judged tasks behind a metric's name as EvaluateClaims gives it; the drop is both.
        IEnumerable<string> TasksOf(string metric) => judgedTasks.TryGetValue(metric, out var tasks) ? tasks : [plain, framed];
    }

    private void AddTest(List<ClaimTest> tests, string metric, string better, string worse, Func<string, Dictionary<string, double>> values)
    {
        var a = values(better);
        var b = values(worse);
        var keys = a.Keys.Where(b.ContainsKey).Order(StringComparer.Ordinal).ToList();
        if (keys.Count > 0) tests.Add(new ClaimTest(metric, better, worse, PairedDifference.Test([.. keys.Select(k => a[k] - b[k])], _options.Confidence)));
    }

    /// <summary>
    /// One variant's value on each item of a metric, averaged over the seeds that have it (items missing from a seed are
    /// left out): 1 or 0 for a multiple-choice item's <c>acc</c>, the score for a judged prompt.
    /// </summary>
    private Dictionary<string, double> ItemValues(string variant, string metric) => AverageOverSeeds(seed =>
    {
        if (seed.Scores.FirstOrDefault(s => s.Model == variant && s.Task == metric) is { } judged)
        {
            return judged.Scores.Select((s, i) => (Key: i.ToString(CultureInfo.InvariantCulture), Score: s))
                .Where(x => x.Score is not null).ToDictionary(x => x.Key, x => x.Score!.Value, StringComparer.Ordinal);
        }
        var results = seed.Results.FirstOrDefault(r => r.Model == variant && r.Task == metric);
        return results?.Items.ToDictionary(i => i.Id, i => i.Metrics.Accuracy ? 1.0 : 0.0, StringComparer.Ordinal);
    });

    /// <summary>One variant's drop from plain to framed prompts, prompt by prompt, averaged over the seeds.</summary>
    private Dictionary<string, double> Drops(string variant) => AverageOverSeeds(seed =>
    {
        var plain = seed.Scores.FirstOrDefault(s => s.Model == variant && s.Task == Design.PlainJudgeTask);
        var framed = seed.Scores.FirstOrDefault(s => s.Model == variant && s.Task == Design.AdversarialJudgeTask);
        if (plain is null || framed is null) return null;
        var drops = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < Math.Min(plain.Scores.Count, framed.Scores.Count); i++)
        {
            if (plain.Scores[i] is double p && framed.Scores[i] is double f) drops[i.ToString(CultureInfo.InvariantCulture)] = p - f;
        }
        return drops;
    });

    private Dictionary<string, double> AverageOverSeeds(Func<SeedResults, Dictionary<string, double>?> perSeed)
    {
        var sums = new Dictionary<string, (double Sum, int Count)>(StringComparer.Ordinal);
        foreach (var seed in Seeds)
        {
            if (perSeed(seed) is not { } values) continue;
            foreach (var (key, value) in values)
                sums[key] = sums.TryGetValue(key, out var s) ? (s.Sum + value, s.Count + 1) : (value, 1);
        }
        return sums.ToDictionary(kv => kv.Key, kv => kv.Value.Sum / kv.Value.Count, StringComparer.Ordinal);
    }
}
