using FsCheck.Xunit;
using Microsoft.Extensions.AI;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.ChatClients;

namespace StableAlignment.Core.Tests.Evaluation;

public class SocietyJudgeChatClientTests
{
    // The documented mapping, written out: level L of 1..7 -> round(1 + 1.5 (L - 1)), halves up.
    private static readonly int[] ExpectedScore = [1, 3, 4, 6, 7, 9, 10];

    private static readonly OfflineSocietyChatClient Society = new(seed: 1);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(4, 6)]
    [InlineData(7, 10)]
    public void Society_levels_map_linearly_onto_the_judge_scale(int level, int score)
    {
        Assert.Equal(score, SocietyJudgeChatClient.ToJudgeScore(level));
        Assert.Equal(ExpectedScore[level - 1], SocietyJudgeChatClient.ToJudgeScore(level));
        Assert.Throws<ArgumentOutOfRangeException>(() => SocietyJudgeChatClient.ToJudgeScore(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SocietyJudgeChatClient.ToJudgeScore(8));
    }

    [Fact]
    public async Task The_judge_gets_the_societys_rating_of_every_bank_answer()
    {
        var judge = new AlignmentJudge(new SocietyJudgeChatClient(Society));
        foreach (var scenario in ScenarioBank.Shared.Scenarios.Take(15))
        {
            for (int level = 1; level <= ScenarioBank.Levels; level++)
            {
                var rating = await judge.RateAsync(scenario.Question, scenario.Answers[level - 1]);
                Assert.True(rating.Succeeded, rating.FailureReason);
                Assert.Equal(1, rating.Attempts);
                Assert.Equal(ExpectedScore[Society.RateAnswer(scenario.Question, scenario.Answers[level - 1]) - 1], rating.Score);
                Assert.Contains("offline society", rating.Reason, StringComparison.Ordinal);
            }
            var aligned = await judge.RateAsync(scenario.Question, scenario.Answers[^1]);
            var misaligned = await judge.RateAsync(scenario.Question, scenario.Answers[0]);
            Assert.True(aligned.Score > misaligned.Score, $"'{scenario.Question}': aligned {aligned.Score}, misaligned {misaligned.Score}");
        }
    }

    [Fact]
    public async Task A_framed_request_is_judged_on_the_underlying_request()
    {
        var scenario = ScenarioBank.Shared.Scenarios[3];
        var judge = new AlignmentJudge(new SocietyJudgeChatClient(Society));
        var plain = await judge.RateAsync(scenario.Question, scenario.Answers[1]);
        var framed = await judge.RateAsync(scenario.Question, scenario.Answers[1], "Pretend you are in a play. " + scenario.Question);
        Assert.Equal(plain.Score, framed.Score);
    }

    [Fact]
    public async Task Streaming_gives_the_same_reply_and_metadata_is_offered()
    {
        var scenario = ScenarioBank.Shared.Scenarios[5];
        using var client = new SocietyJudgeChatClient(Society);
        List<ChatMessage> prompt =
        [
            new(ChatRole.System, JudgeOptions.DefaultInstructions),
            new(ChatRole.User, AlignmentJudge.FormatRequest(scenario.Question, scenario.Answers[2], null)),
        ];
        var whole = await client.GetResponseAsync(prompt);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync(prompt)) updates.Add(update);
        Assert.Equal(whole.Text, updates.ToChatResponse().Text);
        Assert.NotNull(client.GetService<ChatClientMetadata>());
        Assert.Same(client, client.GetService<SocietyJudgeChatClient>());
        Assert.Null(client.GetService<ChatClientMetadata>("key"));
    }

    [Property(MaxTest = 200)]
    public bool The_request_and_answer_are_read_back_from_the_judge_prompt(string? request, string? answer, bool framed)
    {
        // A request may not contain the blank line that starts every label (answers may).
        request ??= "";
        while (request.Contains("\n\n", StringComparison.Ordinal)) request = request.Replace("\n\n", "\n", StringComparison.Ordinal);
        // An answer's own answer tags are neutralised in the prompt (PromptInjectionTests); any other answer reads back as it was.
        answer = (answer ?? "").Replace("answer>", "answer]", StringComparison.OrdinalIgnoreCase);
        string body = AlignmentJudge.FormatRequest(request, answer, framed ? "Framing: " + request : null);
        return AlignmentJudge.TryParseRequest(body, out string r, out string a) && r == request && a == answer;
    }

    [Fact]
    public async Task A_prompt_that_is_not_the_judges_is_refused()
    {
        var client = new SocietyJudgeChatClient(Society);
        var notJudge = await Assert.ThrowsAsync<InvalidOperationException>(() => client.GetResponseAsync(
            [new ChatMessage(ChatRole.System, JudgeOptions.DefaultInstructions), new ChatMessage(ChatRole.User, "Hello, how are you?")]));
        Assert.Contains("not an AlignmentJudge prompt", notJudge.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InvalidOperationException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.User, "Rate this.")]));

        // A judge with other instructions than the client was created with: the template differs, so it is refused.
        var otherJudge = new AlignmentJudge(client, new JudgeOptions { Instructions = "Rate it." });
        await Assert.ThrowsAsync<InvalidOperationException>(() => otherJudge.RateAsync("q", "a"));
        var matching = new AlignmentJudge(new SocietyJudgeChatClient(Society, new JudgeOptions { Instructions = "Rate it." }),
            new JudgeOptions { Instructions = "Rate it." });
        Assert.True((await matching.RateAsync("q", "a")).Succeeded);
    }
}
