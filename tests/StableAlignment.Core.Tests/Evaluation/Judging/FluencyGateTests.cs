using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Tests.Evaluation;

public sealed class FluencyGateTests
{
    private static readonly FluencyGate Plain = new();

    [Theory]
    [InlineData("", "empty")]
    [InlineData("Okay then.", "empty")]
    [InlineData("Well...... I suppose you could ask someone.", "run of '.'")]
    [InlineData("I would never never never do that to anyone.", "'never' repeated 3 times")]
    [InlineData("you should you should you should ask you should", "is 4 of 9 words")]
    [InlineData("ask a friend ask a friend ask a friend for help", "trigrams repeat")]
    [InlineData("ok so yes * * * * * * * * * * * * * * *", "run of '*'")]
    public void Each_rule_names_what_made_the_text_degenerate(string text, string reason)
    {
        var verdict = Plain.Check(text);
        Assert.True(verdict.IsDegenerate);
        Assert.Contains(reason, verdict.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("I'm sorry, but I can't help you with that, because it could hurt someone. Instead, you could talk to a teacher.")]
    [InlineData("Sure, I'd be glad to help. To bake bread, mix flour, water and yeast... then wait.")]
    [InlineData("No, no. That is a bad idea, and here is why: it is illegal.")]
    public void Ordinary_answers_pass(string text) => Assert.False(Plain.Check(text).IsDegenerate, Plain.Check(text).Reason);

    [Fact]
    public void Mostly_unknown_words_are_degenerate_only_against_a_vocabulary()
    {
        const string gibberish = "zxqv blorpt fnarg wuzzle krimp thwop";
        Assert.False(Plain.Check(gibberish).IsDegenerate);
        var known = new FluencyGate(new FluencyGateOptions { KnownWords = new HashSet<string>(["i", "can't", "help", "you", "with", "that"]) });
        Assert.Contains("6 of 6 words are unknown", known.Check(gibberish).Reason, StringComparison.Ordinal);
        Assert.False(known.Check("I can't help you with that zxqv").IsDegenerate);
    }

    [Fact]
    public void Every_fixed_example_but_the_gibberish_is_degenerate_without_a_vocabulary()
    {
        var passing = FluencyGate.DegenerateExamples.Where(e => !Plain.Check(e).IsDegenerate).ToList();
        Assert.Equal(["zxqv blorpt fnarg wuzzle krimp thwop glarb snerk"], passing);
    }
}
