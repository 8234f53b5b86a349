using System.Text.Json;
using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Tests.Evaluation;

/// <summary>
/// The harness on the real files, with scorers whose right answers are known; expected counts come from reading the
/// raw files separately here, with plain code.
/// </summary>
public class SharedDataTests
{
    private const string Truthful = "truthfulqa-mc-dev.json";
    private const string Justice = "ethics-justice_test.csv";
    private const string Deontology = "ethics-deontology_test.csv";
    private const string Hh = "hh-harmless-dev.jsonl";

    private static List<JsonElement> RawTruthful()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(SharedData.PathOf(Truthful)));
        return doc.RootElement.EnumerateArray().Select(e => e.Clone()).ToList();
    }

    [SharedDataFact(Truthful)]
    public async Task TruthfulQA_mc1_accuracy_arithmetic_is_exact()
    {
        var raw = RawTruthful();
        var task = TruthfulQaTasks.LoadMc1(SharedData.PathOf(Truthful));
        Assert.Equal(raw.Count, task.Items.Count);

        // Plan: right on items whose index is not a multiple of 3.
        int expected = Enumerable.Range(0, raw.Count).Count(i => i % 3 != 0);
        var scripted = ScriptedScorer.Choosing(task, (i, item) => i % 3 != 0 ? item.Labels.ToList().IndexOf(true) : item.Labels.ToList().IndexOf(false));
        var r = await MultipleChoiceEvaluator.EvaluateAsync(task, scripted, new MultipleChoiceOptions { BatchSize = 50 });
        var summary = EvaluationReport.Create([r]).Tasks[0].Overall;
        Assert.Equal(expected, summary.Accuracy.Successes);
        Assert.Equal(expected, summary.AccuracyNormalized.Successes);
        Assert.Equal((double)expected / raw.Count, summary.Accuracy.Value);

        // A model that cannot tell choices apart: strict ties give nothing; the harness's first-index rule gives
        // every item, because the file lists the true answer first (checked on the raw JSON).
        Assert.All(raw, e => Assert.Equal(1, e.GetProperty("mc1_targets").EnumerateObject().First().Value.GetInt32()));
        var flat = new ScriptedScorer(_ => -1.0);
        var strict = await MultipleChoiceEvaluator.EvaluateAsync(task, flat);
        var first = await MultipleChoiceEvaluator.EvaluateAsync(task, flat, new MultipleChoiceOptions { TieBreaking = TieBreaking.FirstIndex });
        Assert.Equal(0, strict.Items.Count(i => i.Metrics.Accuracy));
        Assert.Equal(raw.Count, first.Items.Count(i => i.Metrics.Accuracy));
    }

    [SharedDataFact(Truthful)]
    public async Task TruthfulQA_mc2_mass_of_a_flat_model_is_the_share_of_true_answers()
    {
        var raw = RawTruthful();
        double expected = 0;
        foreach (var e in raw)
        {
            // Empty answers (an artefact of the source file) are dropped by the loader, as documented.
            var targets = e.GetProperty("mc2_targets").EnumerateObject().Where(t => t.Name.Length > 0).ToList();
            expected += (double)targets.Count(t => t.Value.GetInt32() == 1) / targets.Count;
        }
        expected /= raw.Count;
        var task = TruthfulQaTasks.LoadMc2(SharedData.PathOf(Truthful));
        var r = await MultipleChoiceEvaluator.EvaluateAsync(task, new ScriptedScorer(_ => -3.5));
        Assert.Equal(expected, EvaluationReport.Create([r]).Tasks[0].Overall.TrueProbabilityMass.Mean, 1e-12);
    }

    [SharedDataFact(Truthful)]
    public async Task TruthfulQA_with_a_tiny_random_model_recounts_and_ignores_batch_size()
    {
        var task = TruthfulQaTasks.LoadMc1(SharedData.PathOf(Truthful));
        var small = await MultipleChoiceEvaluator.EvaluateAsync(task, new BigramScorer(7), new MultipleChoiceOptions { BatchSize = 1 });
        var large = await MultipleChoiceEvaluator.EvaluateAsync(task, new BigramScorer(7), new MultipleChoiceOptions { BatchSize = 97 });
        Assert.Equal(ItemResultsJsonl.ToJsonLines([small]), ItemResultsJsonl.ToJsonLines([large]));
        // Recount acc from the raw log-likelihoods: right when the true choice (index 0) beats every other strictly.
        int right = small.Items.Count(i => Enumerable.Range(1, i.LogLikelihoods.Count - 1).All(c => i.LogLikelihoods[0] > i.LogLikelihoods[c]));
        Assert.Equal(right, EvaluationReport.Create([large]).Tasks[0].Overall.Accuracy.Successes);
    }

    [SharedDataFact(Justice, Deontology)]
    public async Task Ethics_always_reasonable_scores_the_share_of_reasonable_rows_and_their_groups()
    {
        foreach (var (file, subset) in new[] { (Justice, EthicsSubset.Justice), (Deontology, EthicsSubset.Deontology) })
        {
            // The files hold no multi-line records, so every line after the header is one item starting with its label.
            var labels = File.ReadAllLines(SharedData.PathOf(file)).Skip(1).Select(l => l[0]).ToArray();
            int reasonable = labels.Count(c => c == '1');
            int groups = labels.Length / 4;
            int allReasonable = Enumerable.Range(0, groups).Count(g => labels.Skip(g * 4).Take(4).All(c => c == '1'));

            var task = EthicsTasks.Load(SharedData.PathOf(file), subset);
            Assert.Equal(labels.Length, task.Items.Count);
            var always = new ScriptedScorer(r => r.Continuation == " reasonable" ? -1.0 : -2.0);
            var result = await MultipleChoiceEvaluator.EvaluateAsync(task, always, new MultipleChoiceOptions { BatchSize = 256 });
            var t = EvaluationReport.Create([result]).Tasks[0];
            Assert.Equal(reasonable, t.Overall.Accuracy.Successes);
            Assert.Equal(labels.Length, t.Overall.Count);
            Assert.Equal(allReasonable, t.GroupExactMatch!.Successes);
            Assert.Equal(groups, t.GroupExactMatch.Count);
        }
    }

    [SharedDataFact(Hh)]
    public async Task Hh_pairs_a_scorer_preferring_shorter_replies_wins_where_chosen_is_shorter()
    {
        int expected = 0, n = 0;
        foreach (var line in File.ReadLines(SharedData.PathOf(Hh)))
        {
            using var doc = JsonDocument.Parse(line);
            string chosen = doc.RootElement.GetProperty("chosen").GetString()!;
            string rejected = doc.RootElement.GetProperty("rejected").GetString()!;
            int tailChosen = chosen.Length - chosen.LastIndexOf("\n\nAssistant:", StringComparison.Ordinal);
            int tailRejected = rejected.Length - rejected.LastIndexOf("\n\nAssistant:", StringComparison.Ordinal);
            expected += tailChosen < tailRejected ? 1 : 0;
            n++;
        }
        var task = HhRlhfTasks.LoadPairs(SharedData.PathOf(Hh));
        Assert.Equal(n, task.Items.Count);
        var shorter = new ScriptedScorer(r => -r.Continuation.Length);
        var result = await MultipleChoiceEvaluator.EvaluateAsync(task, shorter, new MultipleChoiceOptions { BatchSize = 64 });
        Assert.Equal(expected, EvaluationReport.Create([result]).Tasks[0].Overall.Accuracy.Successes);
    }
}
