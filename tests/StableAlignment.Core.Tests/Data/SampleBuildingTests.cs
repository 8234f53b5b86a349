using StableAlignment.Core.Data;
using StableAlignment.Core.Sandbox;
using static StableAlignment.Core.Tests.Data.CashRegisterExample;

namespace StableAlignment.Core.Tests.Data;

public class SampleBuildingTests
{
    private static readonly AlignmentDatasetOptions KeepAll = new() { Mix = null };

    // Written out by hand from spec §3, independent of the option defaults in the library.
    private const string CriticSuffix = " Please comment on the response in the input in terms of how well it is aligned with shared social values.";
    private const string ReviseLine = "\nPlease revise this response in terms of the feedback in the input.";

    [Fact]
    public void Cash_register_example_yields_each_kind_as_the_spec_describes()
    {
        var samples = AlignmentDataset.BuildSamples([Record()], KeepAll);

        var expected = new[]
        {
            new AlignmentSample(SampleKind.Imitation, Question, "", Draft, 3.0),
            new AlignmentSample(SampleKind.Imitation, Question, "", Revision, 5.5),
            new AlignmentSample(SampleKind.SelfCritic, Question + CriticSuffix, Draft, Feedback1, 3.0),
            new AlignmentSample(SampleKind.SelfCritic, Question + CriticSuffix, Draft, Feedback2, 3.0),
            // The realignment prompt groups the draft, rated before revision, with the revision, rated after it.
            new AlignmentSample(SampleKind.Realignment, Question + "\n" + Draft + ReviseLine, Feedback1 + "\n" + Feedback2, Draft, 3.0),
            new AlignmentSample(SampleKind.Realignment, Question + "\n" + Draft + ReviseLine, Feedback1 + "\n" + Feedback2, Revision, 5.5),
        };
        Assert.Equal(expected, samples);
    }

    [Fact]
    public void Rendered_prompts_follow_the_alpaca_template()
    {
        var t = PromptTemplate.Alpaca;
        Assert.Equal("### Instruction:\nQ?\n\n### Response:", t.Render("Q?", ""));
        Assert.Equal("### Instruction:\nQ?\n\n### Input:\nctx\n\n### Response:", t.Render("Q?", "ctx"));
        Assert.True(t.TryParse("### Instruction:\nQ?\n\n### Input:\nctx\n\n### Response:", out var ins, out var inp));
        Assert.Equal(("Q?", "ctx"), (ins, inp));
        Assert.True(t.TryParse("### Instruction:\nQ?\n\n### Response:", out ins, out inp));
        Assert.Equal(("Q?", ""), (ins, inp));
        Assert.False(t.TryParse("Human: hi", out _, out _));
    }

    [Fact]
    public void A_replaced_template_is_used_for_grouping()
    {
        var options = KeepAll with { Template = new PromptTemplate { WithoutInput = "Q: {instruction}\nA:", WithInput = "Q: {instruction}\nC: {input}\nA:" } };
        var ds = AlignmentDataset.FromInteractions([Record()], options);
        Assert.Equal("Q: " + Question + "\nA:", ds.Records[0].Query);
    }

    [Fact]
    public void Failed_ratings_are_dropped_and_never_become_magic_values()
    {
        var record = Record(
            draftAlignment: [null, null],
            revisionAlignment: [6, null],
            feedback: [new PeerFeedback(11, RatingOutcome.Failure("unparsable", "Rating: great")), new PeerFeedback(12, Ok(2, Feedback2))]);

        var samples = AlignmentDataset.BuildSamples([record], KeepAll);

        // Draft imitation: no observer rating -> dropped. Revision imitation: mean of the one success (6).
        // Self-critic: only peer 12. Realignment: the draft has no rating, so "improved" cannot be shown -> none.
        Assert.Equal(
            [
                new AlignmentSample(SampleKind.Imitation, Question, "", Revision, 6.0),
                new AlignmentSample(SampleKind.SelfCritic, Question + CriticSuffix, Draft, Feedback2, 2.0),
            ],
            samples);
        Assert.DoesNotContain(samples, s => s.Rating is 8 or -1);
    }

    [Theory]
    [InlineData(3, 4, false)] // improved but not above the middle of the scale
    [InlineData(5, 5, false)] // not improved
    [InlineData(6, 5, false)] // worse
    [InlineData(3, 5, true)]
    [InlineData(4, 7, true)]
    public void Realignment_needs_an_improvement_rated_above_the_middle(int before, int after, bool kept)
    {
        var samples = AlignmentDataset.BuildSamples([Record(draftAlignment: [before], revisionAlignment: [after])], KeepAll);
        var group = samples.Where(s => s.Kind == SampleKind.Realignment).Select(s => (s.Output, s.Rating)).ToList();
        Assert.Equal(kept ? [(Draft, (double)before), (Revision, (double)after)] : [], group);
    }

    [Fact]
    public void Every_feedback_revision_pass_joins_the_realignment_group_with_its_own_rating()
    {
        // Three passes: 3 -> 5 (kept), 5 -> 6 (kept), 6 -> 4 (not kept, still a rated answer to learn from).
        const string second = "I won't help. Taking money from the till is theft; if you need money, ask about an advance.";
        const string third = "Maybe just don't.";
        var passes = new[] { (Revision, 5), (second, 6), (third, 4) }
            .Select(p => new RevisionPass([new PeerFeedback(11, Ok(4, Feedback1))], p.Item1, [Observer(100, p.Item2)])).ToList();
        var record = Record(revision: second, revisionAlignment: [6]) with { Passes = 2, PassHistory = passes };

        var group = AlignmentDataset.BuildSamples([record], KeepAll).Where(s => s.Kind == SampleKind.Realignment).ToList();

        Assert.Equal([(Draft, 3.0), (Revision, 5.0), (second, 6.0), (third, 4.0)], group.Select(s => (s.Output, s.Rating)));
        // One prompt for the whole group: the question, the draft and the first pass's feedback.
        Assert.Single(group.Select(s => (s.Instruction, s.Input)).Distinct());
        Assert.Equal(Feedback1 + "\n" + Feedback2, group[0].Input);
    }

    [Fact]
    public void A_realignment_group_needs_its_best_answer_to_be_an_improved_revision()
    {
        static RevisionPass Pass(string text, int rating) => new([], text, [Observer(100, rating)]);
        // The best revision (5) improves on the draft (3) and is above the middle, although the last pass got worse.
        var improved = Record(revisionAlignment: [5]) with { PassHistory = [Pass(Revision, 5), Pass("Worse.", 2)] };
        // A revision that repeats the draft word for word is not a revision; nothing else improved.
        var repeated = Record(revision: Draft, revisionAlignment: [5]);
        // Every revision is rated below the middle.
        var weak = Record(revisionAlignment: [4]) with { PassHistory = [Pass(Revision, 4), Pass("Also weak.", 4)] };

        int Groups(InteractionRecord r) => AlignmentDataset.FromInteractions([r], KeepAll).Kinds.Count(k => k == SampleKind.Realignment);
        Assert.Equal((1, 0, 0), (Groups(improved), Groups(repeated), Groups(weak)));
    }

    [Fact]
    public void Mixing_draws_realignment_groups_whole()
    {
        // 20 realignment groups of three responses, 50 imitation and 30 self-critic samples.
        var realignment = Enumerable.Range(0, 20).SelectMany(g => new[] { 2.0, 5.0, 6.0 }.Select(r =>
            new AlignmentSample(SampleKind.Realignment, "q" + g, "f", "r" + r, r))).ToList();
        var samples = Enumerable.Range(0, 50).Select(i => new AlignmentSample(SampleKind.Imitation, "q" + i, "", "a", 5))
            .Concat(Enumerable.Range(0, 30).Select(i => new AlignmentSample(SampleKind.SelfCritic, "q" + i, "x", "c", 5)))
            .Concat(realignment).ToList();
        var chosen = SampleBuilderAccess.Mix(samples, KindMix.Reference, seed: 4).Where(s => s.Kind == SampleKind.Realignment).ToList();
        // Scale min(50/5, 30/1, 20/1) = 10: ten whole groups, none cut apart.
        Assert.Equal(30, chosen.Count);
        Assert.All(chosen.GroupBy(s => s.Instruction), g => Assert.Equal(3, g.Count()));
    }

    [Fact]
    public void Realignment_threshold_follows_a_configured_scale()
    {
        // On a 1-10 scale the middle is 5.5: a 5 after a 3 is not enough, a 6 is.
        var options = KeepAll with { MaxRating = 10 };
        Assert.DoesNotContain(AlignmentDataset.BuildSamples([Record(draftAlignment: [3], revisionAlignment: [5])], options), s => s.Kind == SampleKind.Realignment);
        Assert.Equal(2, AlignmentDataset.BuildSamples([Record(draftAlignment: [3], revisionAlignment: [6])], options).Count(s => s.Kind == SampleKind.Realignment));
    }

    [Fact]
    public void Duplicate_responses_to_the_same_prompt_are_removed_first_one_kept()
    {
        var a = Record(draftAlignment: [3], revisionAlignment: [5]);
        var b = Record(draftAlignment: [2], revisionAlignment: [6], revision: "Something else entirely.", round: 1);
        var ds = AlignmentDataset.FromInteractions([a, b], KeepAll);

        var imitation = ds.Records[ds.Kinds.ToList().IndexOf(SampleKind.Imitation)];
        Assert.Equal([Draft, Revision, "Something else entirely."], imitation.Responses);
        Assert.Equal([3.0, 5.0, 6.0], imitation.Scores);
        // Both interactions produced the same two self-critic outputs for the same prompt: kept once.
        var critic = ds.Records[ds.Kinds.ToList().IndexOf(SampleKind.SelfCritic)];
        Assert.Equal([Feedback1, Feedback2], critic.Responses);
    }

    [Fact]
    public void Grouping_by_rendered_query_puts_all_responses_of_a_query_together()
    {
        var ds = AlignmentDataset.FromInteractions([Record()], KeepAll);
        Assert.Equal(3, ds.Records.Count);
        Assert.Equal([SampleKind.Imitation, SampleKind.SelfCritic, SampleKind.Realignment], ds.Kinds);
        Assert.Equal("### Instruction:\n" + Question + "\n\n### Response:", ds.Records[0].Query);
        Assert.Equal("### Instruction:\n" + Question + CriticSuffix + "\n\n### Input:\n" + Draft + "\n\n### Response:", ds.Records[1].Query);
        Assert.Equal(6, ds.SampleCount);
    }

    [Theory]
    [InlineData(100, 30, 7, 35, 7, 7)]   // realignment is scarcest: 7 units
    [InlineData(50, 40, 40, 50, 10, 10)] // imitation is scarcest: 10 units
    [InlineData(3, 9, 9, 3, 0, 0)]       // scale 0.6: 3 imitation, the others round down to 0
    public void Mixing_draws_the_largest_set_in_the_configured_ratio(int ni, int ns, int nr, int ei, int es, int er)
    {
        var samples = Enumerable.Range(0, ni).Select(i => new AlignmentSample(SampleKind.Imitation, "q" + i, "", "a", 5))
            .Concat(Enumerable.Range(0, ns).Select(i => new AlignmentSample(SampleKind.SelfCritic, "q" + i, "x", "c", 5)))
            .Concat(Enumerable.Range(0, nr).Select(i => new AlignmentSample(SampleKind.Realignment, "q" + i, "f", "r", 5)))
            .ToList();
        var mixed = SampleBuilderAccess.Mix(samples, KindMix.Reference, seed: 3);
        Assert.Equal(ei, mixed.Count(s => s.Kind == SampleKind.Imitation));
        Assert.Equal(es, mixed.Count(s => s.Kind == SampleKind.SelfCritic));
        Assert.Equal(er, mixed.Count(s => s.Kind == SampleKind.Realignment));
        Assert.Equal(mixed.Count, mixed.Distinct().Count());
        Assert.All(mixed, s => Assert.Contains(s, samples));
    }

    [Fact]
    public void Mixing_is_deterministic_in_the_seed()
    {
        var samples = Enumerable.Range(0, 200).Select(i => new AlignmentSample((SampleKind)(i % 3), "q" + i, "", "a", 5)).ToList();
        var mix = new KindMix(1, 1, 1);
        var a = SampleBuilderAccess.Mix(samples, mix, 1);
        var b = SampleBuilderAccess.Mix(samples, mix, 1);
        var c = SampleBuilderAccess.Mix(samples, new KindMix(2, 1, 1), 2);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Theory]
    [InlineData("### Instruction:\nQ?\n\n### Response:", SampleKind.Imitation)]
    [InlineData("### Instruction:\nQ? Please comment on the response in the input in terms of how well it is aligned with shared social values.\n\n### Input:\nd\n\n### Response:", SampleKind.SelfCritic)]
    [InlineData("### Instruction:\nQ?\nd\nPlease revise this response in terms of the feedback in the input.\n\n### Input:\nf\n\n### Response:", SampleKind.Realignment)]
    [InlineData("### Instruction:\nQ?\nd\nPlease revise this reponse in terms of the feedback in the input.\n\n### Input:\nf\n\n### Response:", SampleKind.Realignment)] // the released data's spelling
    public void Kinds_are_recognised_from_rendered_queries(string query, SampleKind kind) =>
        Assert.Equal(kind, new AlignmentDatasetOptions().KindOf(query));

    [Fact]
    public void Invalid_options_name_the_option()
    {
        var ex = Assert.Throws<ArgumentException>(() => new AlignmentDatasetOptions { MinRating = 7, MaxRating = 1 }.Validate());
        Assert.Equal("MinRating", ex.ParamName);
        ex = Assert.Throws<ArgumentException>(() => new AlignmentDatasetOptions { Mix = new KindMix(0, 0, 0) }.Validate());
        Assert.Equal("Mix", ex.ParamName);
        ex = Assert.Throws<ArgumentException>(() => new PreferenceBatchOptions { ResponsesPerQuery = 0 }.Validate());
        Assert.Equal("ResponsesPerQuery", ex.ParamName);
    }

    private static class SampleBuilderAccess
    {
        public static List<AlignmentSample> Mix(IReadOnlyList<AlignmentSample> s, KindMix m, int seed) => SampleBuilder.Mix(s, m, seed, PromptTemplate.Alpaca);
    }
}
