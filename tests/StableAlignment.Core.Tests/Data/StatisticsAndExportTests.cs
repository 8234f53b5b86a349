using System.Text.Json;
using StableAlignment.Core.Data;
using StableAlignment.Core.Sandbox;
using static StableAlignment.Core.Tests.Data.CashRegisterExample;

namespace StableAlignment.Core.Tests.Data;

public sealed class StatisticsAndExportTests : IDisposable
{
    private readonly TempFolder _dir = new("sa-stats-");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Statistics_count_kinds_bin_ratings_and_take_percentiles()
    {
        var ds = AlignmentDataset.FromInteractions([Record()], new AlignmentDatasetOptions { Mix = null });
        var stats = ds.ComputeStatistics();

        var imitation = stats.PerKind[(int)SampleKind.Imitation];
        Assert.Equal((1, 2L), (imitation.Queries, imitation.Samples));
        // Ratings 3 and 5.5: 5.5 rounds half away from zero into the 6 bin. Bins are 1..7.
        Assert.Equal([0L, 0, 1, 0, 0, 1, 0], imitation.RatingHistogram);
        var critic = stats.PerKind[(int)SampleKind.SelfCritic];
        Assert.Equal([0L, 0, 2, 0, 0, 0, 0], critic.RatingHistogram);
        // One realignment query: the draft and the revision.
        Assert.Equal((1, 2L), (stats.PerKind[(int)SampleKind.Realignment].Queries, stats.PerKind[(int)SampleKind.Realignment].Samples));

        // Two response lengths: p50 is their midpoint, p90 lies 90% of the way, max is the longer.
        double a = Draft.Length, b = Revision.Length;
        Assert.Equal((a + b) / 2, imitation.ResponseLength.P50, 9);
        Assert.Equal(a + (0.9 * (b - a)), imitation.ResponseLength.P90, 9);
        Assert.Equal(Math.Max(a, b), imitation.ResponseLength.Max);
        Assert.Equal("characters", stats.LengthUnit);
        Assert.Contains("Imitation", stats.ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Percentiles_match_a_plain_sorted_oracle()
    {
        var rng = new Random(1);
        var values = Enumerable.Range(0, 101).Select(_ => (double)rng.Next(0, 1000)).ToList();
        var sorted = values.Order().ToArray();
        var p = AlignmentDatasetStatistics.Percentiles([.. values]);
        // With 101 values, (n - 1) * p lands exactly on indices 50, 90 and 99.
        Assert.Equal(sorted[50], p.P50);
        Assert.Equal(sorted[90], p.P90);
        Assert.Equal(sorted[99], p.P99);
        Assert.Equal(sorted[100], p.Max);
    }

    [Fact]
    public async Task Sandbox_export_writes_one_jsonl_per_agent_with_every_field()
    {
        var first = Record(agentId: 3, round: 1, feedback: [new PeerFeedback(11, Ok(3, Feedback1)), new PeerFeedback(12, RatingOutcome.Failure("no digits"))]);
        var second = Record(agentId: 3, round: 0, question: "Second?");
        var other = Record(agentId: 9);
        var files = await AlignmentDataset.ExportSandboxRecordsAsync([first, second, other], _dir.Path);

        Assert.Equal([_dir.File("agent_3.jsonl"), _dir.File("agent_9.jsonl")], files);
        var lines = File.ReadAllLines(files[0]);
        Assert.Equal(2, lines.Length);
        using var doc = JsonDocument.Parse(lines[1]); // rounds in order: round 1 second
        var e = doc.RootElement;
        Assert.Equal(3, e.GetProperty("agent_id").GetInt32());
        Assert.Equal("misaligned", e.GetProperty("label").GetString());
        Assert.Equal(1, e.GetProperty("round").GetInt32());
        Assert.Equal(Question, e.GetProperty("question").GetString());
        Assert.Equal(Draft, e.GetProperty("draft_answer").GetString());
        Assert.Equal([11, 12], e.GetProperty("peer_ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal([Feedback1, ""], e.GetProperty("peer_feedback").EnumerateArray().Select(x => x.GetString()));
        var ratings = e.GetProperty("peer_ratings").EnumerateArray().ToArray();
        Assert.Equal(3, ratings[0].GetInt32());
        Assert.Equal(JsonValueKind.Null, ratings[1].ValueKind); // a failed rating, not a magic 8
        Assert.Equal(Revision, e.GetProperty("revised_answer").GetString());
        Assert.Equal([3, 3], e.GetProperty("draft_alignment_ratings").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal([5, 6], e.GetProperty("revised_alignment_ratings").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal([4, 4], e.GetProperty("revised_engagement_ratings").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal("observer reason", e.GetProperty("draft_alignment_reasons")[0].GetString());
    }
}
