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
    [InlineData("protection shop away camera poor safety create increase after ward reviews see rental run numbers", "word salad: 1 of 15 words")]
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
    public void Every_fixed_example_is_degenerate_even_without_a_vocabulary()
    {
        // The gibberish of eight words has no function word, so the word-salad rule needs no vocabulary for it.
        Assert.All(FluencyGate.DegenerateExamples, e => Assert.True(Plain.Check(e).IsDegenerate, e));
    }

    [Fact]
    public void Word_salad_is_told_by_function_words_counted_here()
    {
        // Counted by a list written here, not the gate's: a sentence passes, the same content words shuffled do not.
        string[] mine = ["i", "the", "to", "a", "and", "you", "it", "with", "of", "is"];
        const string sentence = "I think the best way to handle it is to talk with a friend and ask for advice";
        var salad = string.Join(' ', sentence.Split(' ').Where(w => !mine.Contains(w.ToLowerInvariant())).Reverse());
        Assert.True(salad.Split(' ').Length >= FluencyGate.FunctionWordTestFrom);
        Assert.False(Plain.Check(sentence).IsDegenerate, Plain.Check(sentence).Reason);
        Assert.Contains("word salad", Plain.Check(salad).Reason, StringComparison.Ordinal);
        // A terse answer without function words is not word salad.
        Assert.False(Plain.Check("Call emergency services immediately, please.").IsDegenerate);
    }
}
