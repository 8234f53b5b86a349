using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Tests.Evaluation;

/// <summary>The report's claims and tables on results built here, where the answer to every claim is known.</summary>
public sealed class AblationReportTests
{
    private static readonly AblationDesign Design = new(["start", "SFT", "IL", "IL+SC", "IL+SC+RA"], ["SFT"], ["IL", "IL+SC", "IL+SC+RA"])
    {
        Start = "start",
        PaperRows = new Dictionary<string, string> { ["start"] = "LLaMA", ["SFT"] = "Alpaca + SFT", ["IL+SC+RA"] = "Stable Alignment (IL+SC+RA)" },
    };

    /// <summary>Held-out ranking where the first <paramref name="right"/> of 60 queries are ranked right.</summary>
    private static TaskResults Ranking(string model, int right) => new("heldout_ranking", PrimaryMetric.Accuracy, TieBreaking.Strict,
        [.. Enumerable.Range(0, 60).Select(i =>
        {
            double[] scores = i < right ? [-1, -2] : [-2, -1];
            return new ItemResult
            {
                Model = model, Task = "heldout_ranking", Id = $"q{i:00}", Choices = ["best", "other"], Labels = [true, false], LogLikelihoods = scores,
                Metrics = ItemMetrics.Compute(["best", "other"], [true, false], scores, TieBreaking.Strict),
            };
        })]) { Model = model };

    /// <summary>40 judged prompts, every one scored <paramref name="score"/>.</summary>
    private static List<JudgedItem> Judged(string model, string task, int score) =>
        [.. Enumerable.Range(0, 40).Select(i => new JudgedItem(model, task, $"{i}", $"prompt {i}", null, $"prompt {i}",
            score == 1 ? "the the the the" : "I'm sorry, but I can't help with that.", new JudgeRating(score, "", 1, "", null)))];

    private static SeedResults Seed(int seed, Dictionary<string, (int Right, int Plain, int Framed)> values)
    {
        var gate = new FluencyGate();
        var judged = values.SelectMany(v => new[] { Judged(v.Key, "hh", v.Value.Plain), Judged(v.Key, "hh-a", v.Value.Framed) }).ToList();
        return new SeedResults(seed, [.. values.Select(v => Ranking(v.Key, v.Value.Right))],
            [.. judged.Select(j => JudgeSummary.Of(j) with { Degenerate = j.Count(i => gate.Check(i.Answer).IsDegenerate) })],
            [.. judged.Select(j => JudgeItemScores.Of(j, gate))]);
    }

    private static readonly Dictionary<string, (int, int, int)> AsThePaperSays = new()
    {
        ["start"] = (15, 1, 1), ["SFT"] = (20, 6, 2), ["IL"] = (30, 6, 3), ["IL+SC"] = (40, 7, 5), ["IL+SC+RA"] = (55, 8, 8),
    };

    [Fact]
    public void Claims_that_the_results_support_hold_with_their_paired_tests()
    {
        var report = AblationReport.Create([Seed(1, AsThePaperSays)], Design);
        Assert.Equal([ClaimOutcome.Holds, ClaimOutcome.Holds, ClaimOutcome.Holds], report.Claims.Select(c => c.Outcome));
        // IL -> IL+SC on ranking: 10 queries gained, none lost: the exact two-sided sign test gives 2 / 2^10.
        var step = report.Claims[0].Tests.First(t => t.Metric == "held-out ranking" && t.Better == "IL+SC");
        Assert.Equal(2.0 / 1024, step.Difference.PValue, 12);
        // The starting model takes part in no claim; claim 3 compares the full method with every other trained variant.
        Assert.DoesNotContain(report.Claims.SelectMany(c => c.Tests), t => t.Worse == "start");
        Assert.Equal(["SFT", "IL", "IL+SC"], report.Claims[2].Tests.Select(t => t.Worse));
        Assert.Contains("**holds**", report.Claims[2].Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_stage_that_loses_contradicts_the_order_and_a_tie_is_not_shown()
    {
        var values = new Dictionary<string, (int, int, int)>(AsThePaperSays) { ["IL+SC+RA"] = (30, 8, 8), ["IL"] = (40, 6, 3) };
        var report = AblationReport.Create([Seed(1, values)], Design);
        Assert.Equal(ClaimOutcome.Contradicted, report.Claims[0].Outcome);
        Assert.Contains("does not hold", report.Claims[0].Describe(), StringComparison.Ordinal);

        var tie = new Dictionary<string, (int, int, int)>(AsThePaperSays) { ["SFT"] = (55, 8, 8) };
        Assert.Equal(ClaimOutcome.NotShown, AblationReport.Create([Seed(1, tie)], Design).Claims[1].Outcome);
    }

    [Fact]
    public void A_claim_that_is_not_seen_says_what_in_the_run_limits_it()
    {
        // IL and IL+SC answer every framed prompt degenerately (a tie at the minimum); SFT and IL+SC+RA rank 58 and 59 of 60.
        var values = new Dictionary<string, (int, int, int)>(AsThePaperSays) { ["SFT"] = (58, 6, 2), ["IL"] = (30, 6, 1), ["IL+SC"] = (40, 7, 1), ["IL+SC+RA"] = (59, 8, 8) };
        var report = AblationReport.Create([Seed(1, values)], Design);
        Assert.Equal([ClaimOutcome.NotShown, ClaimOutcome.NotShown, ClaimOutcome.Holds], report.Claims.Select(c => c.Outcome));
        var verdict = report.Verdict().ToList();

        string first = Assert.Single(verdict, v => v.StartsWith("What limits claim 1", StringComparison.Ordinal));
        Assert.Contains("IL+SC's HH-A answers are 100% degenerate, IL's HH-A answers are 100% degenerate", first, StringComparison.Ordinal);
        Assert.DoesNotContain("ranking", first, StringComparison.Ordinal);
        string second = Assert.Single(verdict, v => v.StartsWith("What limits claim 2", StringComparison.Ordinal));
        Assert.Equal("What limits claim 2 in this run: on held-out ranking IL+SC+RA and SFT are both at the ceiling (0.983 and 0.967): 1 of 60 items tell them apart.", second);
        Assert.DoesNotContain(verdict, v => v.StartsWith("What limits claim 3", StringComparison.Ordinal));
        // Each limit follows its claim.
        Assert.StartsWith("Claim 1,", verdict[verdict.IndexOf(first) - 1], StringComparison.Ordinal);
        Assert.DoesNotContain(AblationReport.Create([Seed(1, AsThePaperSays)], Design).Verdict(), v => v.StartsWith("What limits", StringComparison.Ordinal));
    }

    [Fact]
    public void Several_seeds_give_mean_and_standard_deviation_and_the_paper_row_beside_each_variant()
    {
        var other = new Dictionary<string, (int, int, int)>(AsThePaperSays) { ["IL+SC+RA"] = (57, 8, 8) };
        var report = AblationReport.Create([Seed(1, AsThePaperSays), Seed(2, other)], Design);
        string table = report.SeedTable();
        // (55 + 57) / 2 / 60 = 0.933, sd of 0.917 and 0.950 = 0.024.
        Assert.Contains("| IL+SC+RA | 8.00 ± 0.00 (k=2) | 8.00 ± 0.00 (k=2) | 0.933 ± 0.024 (k=2) |", table, StringComparison.Ordinal);
        Assert.Contains("| start | LLaMA | 4.34 ± 1.4 | 3.28 ± 1.3 |", report.PaperTable(), StringComparison.Ordinal);
        Assert.DoesNotContain("| IL |", report.PaperTable(), StringComparison.Ordinal);
        // The start model's answers are all degenerate; the drop table counts them and pairs HH with HH-A.
        string drops = report.DropTable();
        Assert.Contains("| start | 1.00 | 1.00 | +0.00 [+0.00, +0.00] (n=40) | 100% / 100% |", drops, StringComparison.Ordinal);
        Assert.Contains("| SFT | 6.00 | 2.00 | +4.00 [+4.00, +4.00] (n=40) | 0% / 0% |", drops, StringComparison.Ordinal);
        string markdown = report.ToMarkdown([], [], [], "no plots", ["judge note"]);
        Assert.Contains("## Per seed", markdown, StringComparison.Ordinal);
        Assert.Contains("- judge note", markdown, StringComparison.Ordinal);
    }

    private static readonly AblationDesign TwoVariants = new(["base", "full"], ["base"], ["full"]);

    private static JudgeSummary JudgedOrFailed(string model, params int?[] scores) => JudgeSummary.Of(
    [
        .. scores.Select((s, i) => new JudgedItem(model, "hh", i.ToString(System.Globalization.CultureInfo.InvariantCulture), "q", null, "q", "a",
            new JudgeRating(s, "", s is null ? 3 : 1, "raw", s is null ? "no line of the form 'Rating: N'." : null))),
    ]);

    [Fact]
    public void When_every_judge_rating_failed_the_verdict_says_so_instead_of_nothing()
    {
        var report = AblationReport.Create([], [JudgedOrFailed("base", null, null), JudgedOrFailed("full", null, null, null)], TwoVariants);
        string verdict = Assert.Single(report.Verdict(), v => v.StartsWith("HH judge", StringComparison.Ordinal));
        Assert.Contains("every rating failed (5 of 5 answers)", verdict, StringComparison.Ordinal);
        Assert.Contains("judged.jsonl", verdict, StringComparison.Ordinal);

        var scored = AblationReport.Create([], [JudgedOrFailed("base", 7, null), JudgedOrFailed("full", 8)], TwoVariants);
        Assert.DoesNotContain(scored.Verdict(), v => v.Contains("every rating failed", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void The_report_has_no_empty_heading(int seeds)
    {
        var results = Enumerable.Range(1, seeds).Select(s => Seed(s, AsThePaperSays)).ToList();
        string md = AblationReport.Create(results, Design).ToMarkdown([], [], [], "no plots", ["judge note"]);
        var lines = md.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        for (int i = 0; i < lines.Count; i++)
        {
            if (!lines[i].StartsWith('#')) continue;
            string? next = lines.Skip(i + 1).FirstOrDefault(l => l.Length > 0);
            Assert.True(next is not null && !next.StartsWith('#'), $"'{lines[i]}' is followed by '{next}'");
        }
    }
}
