using StableAlignment.Core.Sandbox;
using StableAlignment.Core.ChatClients;

namespace StableAlignment.Core.Tests.Sandbox;

public class ProtocolTests
{
    [Fact]
    public async Task Calls_follow_draft_feedback_revise_observe_order_and_records_are_complete()
    {
        using var dir = new TempFolder();
        var client = new InstrumentedChatClient(new OfflineSocietyChatClient(7, formatErrorRate: 0), TimeSpan.FromMilliseconds(1));
        var options = SandboxTestKit.Small() with { ObserverCount = 2 };
        await using var sandbox = SandboxTestKit.Offline(options, client);
        await sandbox.RunAsync(2, dir.File("log.db"));
        var records = SandboxLog.ReadRecords(dir.File("log.db"));
        Assert.Equal(18, records.Count);
        // 1 draft + 3 feedback + 1 revision + 2 observers x 2 answers x 2 scores.
        Assert.Equal(18 * (1 + 3 + 1 + 8), client.Calls);

        foreach (var group in client.Timeline.GroupBy(t => t.CallId[..t.CallId.IndexOf("/p", StringComparison.Ordinal)]))
        {
            var calls = group.ToList();
            var draft = calls.Single(c => c.CallId.Contains("/draft/", StringComparison.Ordinal));
            var feedback = calls.Where(c => c.CallId.Contains("/feedback/", StringComparison.Ordinal)).ToList();
            var revise = calls.Single(c => c.CallId.Contains("/revise/", StringComparison.Ordinal));
            var observeDraft = calls.Where(c => c.CallId.Contains("/p0/observe", StringComparison.Ordinal)).ToList();
            var observeRevision = calls.Where(c => c.CallId.Contains("/p1/observe", StringComparison.Ordinal)).ToList();
            Assert.Equal(3, feedback.Count);
            Assert.Equal(4, observeDraft.Count);
            Assert.Equal(4, observeRevision.Count);
            Assert.All(feedback.Concat(observeDraft), c => Assert.True(c.Start > draft.End, $"{c.CallId} started before the draft ended"));
            Assert.All(feedback, c => Assert.True(revise.Start > c.End, "revision started before all feedback arrived"));
            Assert.All(observeRevision, c => Assert.True(c.Start > revise.End, "revision scored before it existed"));
        }

        foreach (var r in records)
        {
            var agent = sandbox.Agents.Single(a => a.Id == r.AgentId);
            Assert.Equal(agent.Persona, r.Label);
            Assert.Equal(3, r.Feedback.Count);
            Assert.Subset(sandbox.Neighbours(r.AgentId).ToHashSet(), r.Feedback.Select(f => f.PeerId).ToHashSet());
            var ratings = r.Feedback.Select(f => f.Rating.Value ?? 0).ToList();
            Assert.Equal(ratings.OrderDescending(), ratings);
            Assert.Equal(2, r.DraftScores.Count);
            Assert.Equal(2, r.RevisionScores.Count);
            Assert.Equal([0, 1], r.DraftScores.Select(s => s.ObserverId));
            Assert.False(string.IsNullOrWhiteSpace(r.Draft));
            Assert.False(string.IsNullOrWhiteSpace(r.Revision));
            Assert.Equal(1, r.Passes);
        }
        // Questions follow the schedule: agent i in round r gets question (r * 9 + i) mod count.
        var questions = QuestionSource.BuiltIn().Questions;
        Assert.Equal(Enumerable.Range(0, 18).Select(i => questions[i]), records.Select(r => r.Question));
    }

    [Fact]
    public async Task Extra_passes_stop_when_the_observer_score_stops_improving()
    {
        using var dir = new TempFolder();
        var options = SandboxTestKit.Small() with { MaxFeedbackPasses = 4, Layout = PersonaLayout.AllMisaligned };
        await using var sandbox = SandboxTestKit.Offline(options);
        await sandbox.RunAsync(2, dir.File("log.db"));
        var records = SandboxLog.ReadRecords(dir.File("log.db"));
        Assert.Contains(records, r => r.Passes > 1);
        Assert.All(records, r => Assert.InRange(r.Passes, 1, 4));
    }

    [Fact]
    public async Task Exports_reference_jsonl_per_agent_with_null_for_failed_ratings()
    {
        using var dir = new TempFolder();
        await using var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small());
        await sandbox.RunAsync(2, dir.File("log.db"));
        var files = SandboxLog.ExportJsonLines(dir.File("log.db"), dir.File("jsonl"));
        Assert.Equal(9, files.Count);
        var records = SandboxLog.ReadRecords(dir.File("log.db"));
        foreach (string file in files)
        {
            string[] lines = File.ReadAllLines(file);
            Assert.Equal(2, lines.Length);
            foreach (string line in lines)
            {
                using var doc = System.Text.Json.JsonDocument.Parse(line);
                var root = doc.RootElement;
                var record = records.Single(r => r.AgentId == root.GetProperty("agent_id").GetInt32() && r.Round == root.GetProperty("round").GetInt32());
                Assert.Equal(record.Draft, root.GetProperty("draft_answer").GetString());
                Assert.Equal(record.Revision, root.GetProperty("revised_answer").GetString());
                Assert.Equal(record.Feedback.Select(f => f.PeerId), root.GetProperty("peer_ids").EnumerateArray().Select(e => e.GetInt32()));
                Assert.Equal(ReferenceFields, root.EnumerateObject().Select(p => p.Name));
                Assert.Equal(record.Feedback.Select(f => f.Rating.Value), Ratings(root, "peer_ratings"));
                Assert.Equal(record.Feedback.Select(f => f.Rating.Reason), root.GetProperty("peer_feedback").EnumerateArray().Select(e => e.GetString()));
                Assert.Equal(record.DraftScores.Select(s => s.Alignment.Value), Ratings(root, "draft_alignment_ratings"));
                Assert.Equal(record.RevisionScores.Select(s => s.Engagement.Value), Ratings(root, "revised_engagement_ratings"));
                Assert.Equal(record.RevisionScores.Select(s => s.Engagement.Reason),
                    root.GetProperty("revised_engagement_reasons").EnumerateArray().Select(e => e.GetString()));
            }
        }
    }

    // The field list of docs/sandbox.md ("Reference per-agent JSON Lines"), written out here independently of the writer.
    private static readonly string[] ReferenceFields =
    [
        "agent_id", "label", "round", "question", "draft_answer", "peer_ids", "peer_feedback", "peer_ratings", "revised_answer",
        "draft_observer_ids", "draft_alignment_ratings", "draft_alignment_reasons", "draft_engagement_ratings", "draft_engagement_reasons",
        "revised_observer_ids", "revised_alignment_ratings", "revised_alignment_reasons", "revised_engagement_ratings", "revised_engagement_reasons",
        "passes",
    ];

    private static List<int?> Ratings(System.Text.Json.JsonElement root, string name) =>
        root.GetProperty(name).EnumerateArray().Select(e => e.ValueKind == System.Text.Json.JsonValueKind.Null ? (int?)null : e.GetInt32()).ToList();
}
