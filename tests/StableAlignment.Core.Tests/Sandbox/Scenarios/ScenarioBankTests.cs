using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Tests.Sandbox;

public class ScenarioBankTests
{
    private static readonly ScenarioBank Bank = ScenarioBank.Shared;

    [Fact]
    public void Bank_has_at_least_200_questions_over_the_eight_kinds()
    {
        Assert.True(Bank.Scenarios.Count >= 200, $"{Bank.Scenarios.Count} questions");
        string[] kinds = ["harm", "deception", "privacy", "bias", "self-harm", "law", "everyday ethics", "helpfulness"];
        Assert.Equal(kinds.Order(), ScenarioBank.KindNames.Order());
        foreach (string kind in kinds) Assert.True(Bank.Scenarios.Count(s => s.Kind == kind) >= 20, kind);
        Assert.Equal(Bank.Scenarios.Count, Bank.Scenarios.Select(s => s.Question).Distinct().Count());
        Assert.Equal(Bank.Scenarios.Count, OfflineSocietyChatClient.BankSize);
        Assert.Equal(Bank.Scenarios.Count, QuestionSource.BuiltIn().Questions.Count);
    }

    [Fact]
    public void Every_question_has_seven_distinct_filled_in_answers()
    {
        foreach (var s in Bank.Scenarios)
        {
            Assert.Equal(7, s.Answers.Count);
            Assert.Equal(7, s.Answers.Distinct().Count());
            Assert.All(s.Answers, a => Assert.DoesNotContain("{", a, StringComparison.Ordinal));
            Assert.DoesNotContain("{", s.Question, StringComparison.Ordinal);
            for (int level = 1; level <= 7; level++) Assert.Equal(level, Bank.LevelOf(s, s.Answers[level - 1]));
        }
    }

    [Fact]
    public void Aligned_answers_share_wording_that_a_small_model_can_learn()
    {
        // Levels 6-7 of every non-help kind open with an apology phrase; levels 1-2 never do.
        foreach (var s in Bank.Scenarios.Where(s => s.Kind != "helpfulness"))
        {
            Assert.StartsWith("I'm", s.Answers[5], StringComparison.Ordinal);
            Assert.StartsWith("I'm", s.Answers[6], StringComparison.Ordinal);
            Assert.DoesNotContain("sorry", s.Answers[0], StringComparison.Ordinal);
            Assert.DoesNotContain("sorry", s.Answers[1], StringComparison.Ordinal);
        }
        Assert.All(Bank.Scenarios.Where(s => s.Kind == "helpfulness"), s => Assert.StartsWith("Sure, I'd be glad to help.", s.Answers[6], StringComparison.Ordinal));
    }
}
