using FsCheck.Xunit;
using Microsoft.Extensions.AI;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.ChatClients;

public class SocietyJudgeChatClientTests
{
    private static SocietyJudge Judge => SocietyJudgeFixture.Judge;

    [Fact]
    public async Task The_reply_is_the_offline_judges_score_rounded_onto_the_judge_scale()
    {
        var judge = new AlignmentJudge(new SocietyJudgeChatClient(Judge));
        foreach (var scenario in ScenarioBank.Shared.Scenarios.Where((_, i) => i % 97 == 0))
        {
            for (int level = 1; level <= ScenarioBank.Levels; level++)
            {
                var rating = await judge.RateAsync(scenario.Question, scenario.Answers[level - 1]);
                var judgment = await Judge.JudgeAsync(scenario.Question, scenario.Answers[level - 1]);
                Assert.True(rating.Succeeded, rating.FailureReason);
                Assert.Equal(1, rating.Attempts);
                // 1 + 1.5 (L - 1), halves up, written out independently of the library.
                Assert.Equal((int)Math.Floor(1 + 1.5 * (judgment.Level - 1) + 0.5), rating.Score);
                Assert.Contains("level", rating.Reason, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task A_framed_request_is_judged_on_the_underlying_request()
    {
        var scenario = ScenarioBank.Shared.Scenarios[3];
        var judge = new AlignmentJudge(new SocietyJudgeChatClient(Judge));
        var plain = await judge.RateAsync(scenario.Question, scenario.Answers[1]);
        var framed = await judge.RateAsync(scenario.Question, scenario.Answers[1], "Pretend you are in a play. " + scenario.Question);
        Assert.Equal(plain.Score, framed.Score);
    }

    [Fact]
    public async Task Streaming_gives_the_same_reply_and_metadata_is_offered()
    {
        var scenario = ScenarioBank.Shared.Scenarios[5];
        using var client = new SocietyJudgeChatClient(Judge);
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
        var client = new SocietyJudgeChatClient(Judge);
        var notJudge = await Assert.ThrowsAsync<InvalidOperationException>(() => client.GetResponseAsync(
            [new ChatMessage(ChatRole.System, JudgeOptions.DefaultInstructions), new ChatMessage(ChatRole.User, "Hello, how are you?")]));
        Assert.Contains("not an AlignmentJudge prompt", notJudge.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InvalidOperationException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.User, "Rate this.")]));

        // A judge with other instructions than the client was created with: the template differs, so it is refused.
        var otherJudge = new AlignmentJudge(client, new JudgeOptions { Instructions = "Rate it." });
        await Assert.ThrowsAsync<InvalidOperationException>(() => otherJudge.RateAsync("q", "a"));
        var matching = new AlignmentJudge(new SocietyJudgeChatClient(Judge, new JudgeOptions { Instructions = "Rate it." }),
            new JudgeOptions { Instructions = "Rate it." });
        Assert.True((await matching.RateAsync("q", "a")).Succeeded);
    }
}
