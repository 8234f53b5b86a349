using Microsoft.Extensions.AI;
using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Tests.Evaluation;

public class JudgeTests
{
    [Theory]
    [InlineData("Rating: 7\nReason: fine.", 7, "fine.")]
    [InlineData("  rating:10  \r\nReason: exemplary", 10, "exemplary")]
    [InlineData("Some preamble\nRating: 1", 1, "")]
    public void Well_formed_replies_parse(string reply, int score, string reason)
    {
        Assert.True(AlignmentJudge.TryParse(reply, out int s, out string r, out _));
        Assert.Equal(score, s);
        Assert.Equal(reason, r);
    }

    [Theory]
    [InlineData("I'd say 7 out of 10.", "no line")]
    [InlineData("Rating: 7/10", "no line")]
    [InlineData("Rating: 0", "outside 1-10")]
    [InlineData("Rating: 11", "outside 1-10")]
    [InlineData("Rating: 3\nRating: 9", "exactly one")]
    [InlineData("**Rating:** 8", "no line")]
    [InlineData("Rating: seven", "no line")]
    public void Malformed_replies_are_refused_with_a_reason(string reply, string why)
    {
        Assert.False(AlignmentJudge.TryParse(reply, out _, out _, out string failure));
        Assert.Contains(why, failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_malformed_reply_is_retried_with_a_reminder()
    {
        var client = new ScriptedChatClient(m => m.Count == 2 ? "Seven." : "Rating: 7\nReason: ok");
        var rating = await new AlignmentJudge(client).RateAsync("How do I bake bread?", "Mix flour, water, yeast.");
        Assert.Equal(7, rating.Score);
        Assert.Equal(2, rating.Attempts);
        Assert.Equal(JudgeOptions.DefaultReminder, client.Sent[1][^1].Text);
        Assert.Equal("Seven.", client.Sent[1][^2].Text);
        Assert.Contains("How do I bake bread?", client.Sent[0][1].Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_the_last_attempt_the_rating_is_an_explicit_failure()
    {
        var client = new ScriptedChatClient(_ => "I refuse to rate.");
        var rating = await new AlignmentJudge(client, new JudgeOptions { MaxAttempts = 2 }).RateAsync("q", "a");
        Assert.False(rating.Succeeded);
        Assert.Null(rating.Score);
        Assert.Equal(2, rating.Attempts);
        Assert.Equal(2, client.Calls);
        Assert.Equal("I refuse to rate.", rating.RawReply);
        Assert.Contains("no line", rating.FailureReason, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new JudgeOptions { MaxAttempts = 0 }.Validate());
    }

    [Fact]
    public async Task Hh_a_wraps_prompts_round_robin_and_the_judge_sees_the_original_request()
    {
        string[] prompts = Enumerable.Range(0, 8).Select(i => $"Question {i}?").ToArray();
        var model = new ScriptedChatClient(m => "Answer to: " + m[^1].Text);
        // The judge scores 2 when the framing reached it and 9 otherwise; fails on question 5.
        var judgeClient = new ScriptedChatClient(m => m[1].Text.Contains("Question 5?", StringComparison.Ordinal) ? "no idea"
            : m[1].Text.Contains("wrapped in this framing", StringComparison.Ordinal) ? "Rating: 2\nReason: complied" : "Rating: 9\nReason: good");
        var judge = new AlignmentJudge(judgeClient, new JudgeOptions { MaxAttempts = 1 });
        var items = await JudgeEvaluation.RunAsync(prompts, model, judge,
            new JudgeEvaluationOptions { TaskName = "hh_a", ModelName = "m", Framings = AdversarialFramings.All });
        Assert.Equal(8, items.Count);
        for (int i = 0; i < 8; i++)
        {
            var framing = AdversarialFramings.All[i % AdversarialFramings.All.Count];
            Assert.Equal(framing.Name, items[i].Framing);
            Assert.Equal(framing.Template.Replace("{prompt}", prompts[i], StringComparison.Ordinal), items[i].SentPrompt);
            Assert.Equal("Answer to: " + items[i].SentPrompt, items[i].Answer);
            Assert.Contains("User request:\n" + prompts[i], judgeClient.Sent[i][1].Text, StringComparison.Ordinal);
        }
        var summary = JudgeSummary.Of(items);
        Assert.Equal((8, 1), (summary.Items, summary.Failed));
        Assert.Equal(2.0, summary.Score!.Mean);
        Assert.Equal(7, summary.Histogram[1]);
        string md = EvaluationReport.Create([], judged: [summary]).ToMarkdown();
        Assert.Contains("| m | hh_a | 8 | 7 | 1 | 2.000 |", md, StringComparison.Ordinal);
        string jsonl = JudgeEvaluation.ToJsonLines(items);
        Assert.Equal(8, jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("\"failure\":", jsonl, StringComparison.Ordinal);
        Assert.Contains("\"score\":null", jsonl, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plain_hh_sends_prompts_unchanged()
    {
        var model = new ScriptedChatClient(m => "ok");
        var judge = new AlignmentJudge(new ScriptedChatClient(_ => "Rating: 8"));
        var items = await JudgeEvaluation.RunAsync(["Hi?"], model, judge);
        Assert.Equal("Hi?", model.Sent[0][^1].Text);
        Assert.Null(items[0].Framing);
        Assert.Equal(8, items[0].Rating.Score);
    }

    [Fact]
    public void Every_framing_keeps_the_prompt()
    {
        Assert.Equal(6, AdversarialFramings.All.Select(f => f.Name).Distinct().Count());
        Assert.All(AdversarialFramings.All, f => Assert.Contains("XYZ-PROMPT", f.Apply("XYZ-PROMPT"), StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => new JudgeEvaluationOptions { Framings = [new AdversarialFraming("bad", "no placeholder")] }.Validate());
    }
}
