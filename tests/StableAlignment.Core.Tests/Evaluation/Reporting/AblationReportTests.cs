using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Tests.Evaluation.Reporting;

public sealed class AblationReportTests
{
    private static readonly AblationDesign Design = new(["base", "full"], "base", ["full"]);

    private static JudgeSummary Judged(string model, params int?[] scores) => JudgeSummary.Of(
    [
        .. scores.Select((s, i) => new JudgedItem(model, "hh", i.ToString(System.Globalization.CultureInfo.InvariantCulture), "q", null, "q", "a",
            new JudgeRating(s, "", s is null ? 3 : 1, "raw", s is null ? "no line of the form 'Rating: N'." : null))),
    ]);

    [Fact]
    public void When_every_judge_rating_failed_the_verdict_says_so_instead_of_nothing()
    {
        var report = AblationReport.Create([], [Judged("base", null, null), Judged("full", null, null, null)], Design);
        string verdict = Assert.Single(report.Verdict(), v => v.StartsWith("HH judge", StringComparison.Ordinal));
        Assert.Contains("every rating failed (5 of 5 answers)", verdict, StringComparison.Ordinal);
        Assert.Contains("judged.jsonl", verdict, StringComparison.Ordinal);

        var scored = AblationReport.Create([], [Judged("base", 7, null), Judged("full", 8)], Design);
        Assert.Contains(scored.Verdict(), v => v.StartsWith("HH judge: base 7.00, full 8.00", StringComparison.Ordinal));
    }

    [Fact]
    public void The_report_has_no_empty_heading()
    {
        string md = AblationReport.Create([], [Judged("base", 7), Judged("full", 8)], Design).ToMarkdown([], [], [], "no plots");
        var lines = md.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        for (int i = 0; i < lines.Count; i++)
        {
            if (!lines[i].StartsWith('#')) continue;
            string? next = lines.Skip(i + 1).FirstOrDefault(l => l.Length > 0);
            Assert.True(next is not null && !next.StartsWith('#'), $"'{lines[i]}' is followed by '{next}'");
        }
    }
}
