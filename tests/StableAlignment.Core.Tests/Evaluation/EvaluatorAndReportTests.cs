using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Tests.Evaluation;

public class EvaluatorAndReportTests
{
    private static MultipleChoiceTask Fixture()
    {
        var items = new List<MultipleChoiceItem>();
        string[] categories = ["alpha", "beta", "gamma"];
        for (int i = 0; i < 23; i++)
        {
            var choices = Enumerable.Range(0, 2 + (i % 4)).Select(c => $"choice {c} of item {i}" + new string('!', c)).ToArray();
            items.Add(MultipleChoiceItem.WithGold($"q{i}", $"Question {i}: which? ", choices, i % choices.Length,
                categories[i % 3], group: (i / 4).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
        return new MultipleChoiceTask("fixture", items);
    }

    [Fact]
    public async Task Requests_are_context_plus_space_choice_with_trailing_space_moved()
    {
        var task = new MultipleChoiceTask("t", [MultipleChoiceItem.WithGold("a", "Q: x\nA: ", ["yes", "no"], 0)]);
        var scorer = new ScriptedScorer(_ => -1);
        await MultipleChoiceEvaluator.EvaluateAsync(task, scorer);
        Assert.Equal(new HashSet<LikelihoodRequest> { new("Q: x\nA:", "  yes"), new("Q: x\nA:", "  no") }, scorer.Seen.ToHashSet());
    }

    [Fact]
    public async Task Results_do_not_depend_on_batch_size()
    {
        var task = Fixture();
        int total = task.Items.Sum(i => i.Choices.Count);
        TaskResults? reference = null;
        foreach (int batch in new[] { 1, 3, 7, total, 1000 })
        {
            var scorer = new BigramScorer(seed: 11);
            var r = await MultipleChoiceEvaluator.EvaluateAsync(task, scorer, new MultipleChoiceOptions { BatchSize = batch });
            // The scorer really saw batches of that size.
            Assert.All(scorer.BatchSizes.SkipLast(1), s => Assert.Equal(batch, s));
            Assert.Equal(total, scorer.BatchSizes.Sum());
            Assert.True(scorer.BatchSizes.Max() <= batch);
            // Scores are those of the request alone, whatever the batch.
            for (int i = 0; i < task.Items.Count; i++)
            {
                for (int c = 0; c < task.Items[i].Choices.Count; c++)
                {
                    var req = LikelihoodRequest.Create(task.Items[i].Context, " " + task.Items[i].Choices[c]);
                    Assert.Equal(scorer.Score(req), r.Items[i].LogLikelihoods[c]);
                }
            }
            reference ??= r;
            Assert.Equal(ItemResultsJsonl.ToJsonLines([reference]), ItemResultsJsonl.ToJsonLines([r]));
        }
    }

    [Fact]
    public async Task Scripted_scorer_gives_the_planned_accuracy_and_the_report_counts_it()
    {
        var task = Fixture();
        // Right on items whose index is not a multiple of 3: 23 items, 8 multiples of 3 (0..21) -> 15 right.
        var scorer = ScriptedScorer.Choosing(task, (i, item) => i % 3 != 0 ? item.Labels.ToList().IndexOf(true) : item.Labels.ToList().IndexOf(false));
        var r = await MultipleChoiceEvaluator.EvaluateAsync(task, scorer, new MultipleChoiceOptions { BatchSize = 5 });
        var report = EvaluationReport.Create([r]);
        var t = Assert.Single(report.Tasks);
        Assert.Equal(23, t.Overall.Count);
        Assert.Equal(15, t.Overall.Accuracy.Successes);
        Assert.Equal(15, t.Overall.AccuracyNormalized.Successes);
        Assert.Equal(15.0 / 23, t.Overall.Accuracy.Value);
        // Category alpha holds i = 0, 3, ..., 21: all multiples of 3, all wrong; beta and gamma all right.
        Assert.Equal(["alpha", "beta", "gamma"], t.Categories.Select(c => c.Category));
        Assert.Equal([0, 8, 7], t.Categories.Select(c => c.Metrics.Accuracy.Successes));
        Assert.Equal([8, 8, 7], t.Categories.Select(c => c.Metrics.Count));
        Assert.Equal((0.0 + 1 + 1) / 3, t.MacroAccuracy!.Value, 12);
        // Groups of 4 consecutive items {0-3}, {4-7}, ..., {20-22}: each holds a multiple of 3, so none is all right.
        Assert.Equal(0, t.GroupExactMatch!.Successes);
        Assert.Equal(6, t.GroupExactMatch.Count);
    }

    [Fact]
    public async Task Rescoring_from_json_lines_reproduces_the_report()
    {
        var task = Fixture();
        var a = await MultipleChoiceEvaluator.EvaluateAsync(task, new BigramScorer(3), new MultipleChoiceOptions { ModelName = "sft" });
        var b = await MultipleChoiceEvaluator.EvaluateAsync(task, new BigramScorer(4), new MultipleChoiceOptions { ModelName = "il+sc+ra" });
        using var temp = new TempFolder("sa-eval-");
        string path = temp.File("items.jsonl");
        await ItemResultsJsonl.WriteAsync(path, [a, b]);
        var back = ItemResultsJsonl.Read(path);
        Assert.Equal(2, back.Count);
        Assert.Equal(["sft", "il+sc+ra"], back.Select(x => x.Model));
        var comparison = PairedComparison.McNemar(a, b);
        var original = EvaluationReport.Create([a, b], comparisons: [comparison]);
        var rescored = EvaluationReport.Create(back, comparisons: [PairedComparison.McNemar(back[0], back[1])]);
        Assert.Equal(original.ToMarkdown(), rescored.ToMarkdown());
        Assert.Equal(original.Tasks[0].Overall, rescored.Tasks[0].Overall);
        for (int i = 0; i < a.Items.Count; i++)
        {
            Assert.Equal(a.Items[i].LogLikelihoods, back[0].Items[i].LogLikelihoods);
            Assert.Equal(a.Items[i].Metrics, back[0].Items[i].Metrics);
            Assert.Equal(a.Items[i].Context, back[0].Items[i].Context);
        }
    }

    [Fact]
    public async Task Averages_across_tasks_are_given_micro_and_macro()
    {
        // Task "big": 9 items, all right; task "small": 1 item, wrong. Micro 9/10, macro (1 + 0) / 2.
        MultipleChoiceTask Make(string name, int n) => new(name, Enumerable.Range(0, n)
            .Select(i => MultipleChoiceItem.WithGold($"{name}{i}", "c", ["right", "wrong"], 0)).ToArray());
        var big = await MultipleChoiceEvaluator.EvaluateAsync(Make("big", 9), new ScriptedScorer(r => r.Continuation == " right" ? -1 : -2));
        var small = await MultipleChoiceEvaluator.EvaluateAsync(Make("small", 1), new ScriptedScorer(r => r.Continuation == " right" ? -2 : -1));
        var report = EvaluationReport.Create([big, small]);
        var avg = Assert.Single(report.ModelAverages);
        Assert.Equal((2, 9, 10), (avg.Tasks, avg.Micro.Successes, avg.Micro.Count));
        Assert.Equal(0.5, avg.Macro);
        Assert.Contains("| model | 2 | 10 | 0.900 |", report.ToMarkdown(), StringComparison.Ordinal);
    }

    [Fact]
    public void Calibration_error_bins_items_by_top_probability()
    {
        ItemResult Item(string id, double top, bool right)
        {
            double[] ll = [Math.Log(top), Math.Log(1 - top)];
            bool[] labels = right ? [true, false] : [false, true];
            return new ItemResult
            {
                Task = "t", Id = id, Choices = ["a", "b"], Labels = labels, LogLikelihoods = ll,
                Metrics = ItemMetrics.Compute(["a", "b"], labels, ll, TieBreaking.Strict),
            };
        }
        // Bin [0.9, 1.0): two items at 0.9, one right -> |1 - 1.8| / 4. Bin [0.6, 0.7): two at 0.6, both right -> |2 - 1.2| / 4.
        var r = new TaskResults("t", PrimaryMetric.Accuracy, TieBreaking.Strict,
            [Item("1", 0.9, true), Item("2", 0.9, false), Item("3", 0.6, true), Item("4", 0.6, true)]);
        var m = EvaluationReport.Create([r]).Tasks[0].Overall;
        Assert.Equal(0.4, m.CalibrationError, 12);
        Assert.Equal(3, m.Accuracy.Successes);
    }

    [Fact]
    public void Tied_items_are_those_where_a_right_and_a_wrong_choice_share_the_top_score()
    {
        ItemResult Item(string id, double[] ll, bool[] labels) => new()
        {
            Task = "t", Id = id, Choices = [.. ll.Select((_, i) => $"c{i}")], Labels = labels, LogLikelihoods = ll,
            Metrics = ItemMetrics.Compute([.. ll.Select((_, i) => $"c{i}")], labels, ll, TieBreaking.Strict),
        };
        var r = new TaskResults("t", PrimaryMetric.Accuracy, TieBreaking.Strict,
        [
            Item("tied", [-1, -1], [true, false]),
            Item("two right tie", [-1, -1, -2], [true, true, false]),
            Item("clear", [-1, -2], [true, false]),
            Item("tied at the top with a wrong one", [-3, -1, -1], [false, true, false]),
            Item("tie under the top", [-1, -2, -2], [false, true, false]),
        ]);
        var report = EvaluationReport.Create([r]);
        Assert.Equal(2, report.Tasks[0].Overall.TiedItems);
        Assert.Contains("| 2 (Strict) |", report.ToMarkdown(), StringComparison.Ordinal);
    }

    [Fact]
    public void Rescoring_with_another_tie_rule_changes_only_ties()
    {
        // Two items: one tied (gold first), one clear. Strict: 1 right; first index: 2 right.
        const string jsonl =
            "{\"model\":\"m\",\"task\":\"t\",\"primary\":\"Accuracy\",\"tie_breaking\":\"Strict\",\"id\":\"1\",\"choices\":[\"a\",\"b\"],\"labels\":[1,0],\"loglikelihoods\":[-1,-1]}\n" +
            "{\"model\":\"m\",\"task\":\"t\",\"primary\":\"Accuracy\",\"tie_breaking\":\"Strict\",\"id\":\"2\",\"choices\":[\"a\",\"b\"],\"labels\":[0,1],\"loglikelihoods\":[\"-Infinity\",-3]}\n";
        using var f = new TempFile(jsonl, ".jsonl");
        var strict = ItemResultsJsonl.Read(f.Path)[0];
        Assert.Equal(1, strict.Items.Count(i => i.Metrics.Accuracy));
        var first = ItemResultsJsonl.Read(f.Path, TieBreaking.FirstIndex)[0];
        Assert.Equal(2, first.Items.Count(i => i.Metrics.Accuracy));
        Assert.Equal(first.Items.Select(i => i.Metrics), strict.Rescore(TieBreaking.FirstIndex).Items.Select(i => i.Metrics));
        Assert.True(double.IsNegativeInfinity(strict.Items[1].LogLikelihoods[0]));
    }

    [Fact]
    public void A_malformed_results_line_names_its_line()
    {
        const string jsonl = "{\"model\":\"m\",\"task\":\"t\",\"primary\":\"Accuracy\",\"tie_breaking\":\"Strict\",\"id\":\"1\",\"choices\":[\"a\",\"b\"],\"labels\":[1,0],\"loglikelihoods\":[-1,-2]}\n" +
            "{\"model\":\"m\",\"task\":\"t\",\"primary\":\"Accuracy\",\"tie_breaking\":\"Sloppy\",\"id\":\"2\",\"choices\":[\"a\",\"b\"],\"labels\":[1,0],\"loglikelihoods\":[-1,-2]}\n";
        using var f = new TempFile(jsonl, ".jsonl");
        var e = Assert.Throws<TaskFormatException>(() => ItemResultsJsonl.Read(f.Path));
        Assert.Equal(2, e.Line);
        Assert.Contains("Sloppy", e.Message, StringComparison.Ordinal);
    }

    private sealed class BrokenScorer(Func<IReadOnlyList<LikelihoodRequest>, IReadOnlyList<LikelihoodScore>> answer) : ILogLikelihoodScorer
    {
        public ValueTask<IReadOnlyList<LikelihoodScore>> ScoreAsync(IReadOnlyList<LikelihoodRequest> requests, CancellationToken cancellationToken) =>
            ValueTask.FromResult(answer(requests));
    }

    [Fact]
    public async Task A_scorer_that_returns_too_few_or_nan_scores_is_reported()
    {
        var task = Fixture();
        var few = await Assert.ThrowsAsync<InvalidOperationException>(() => MultipleChoiceEvaluator.EvaluateAsync(task,
            new BrokenScorer(r => r.Skip(1).Select(_ => new LikelihoodScore(-1)).ToArray())));
        Assert.Contains("fixture", few.Message, StringComparison.Ordinal);
        var nan = await Assert.ThrowsAsync<InvalidOperationException>(() => MultipleChoiceEvaluator.EvaluateAsync(task,
            new BrokenScorer(r => r.Select(_ => new LikelihoodScore(double.NaN)).ToArray())));
        Assert.Contains("NaN", nan.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Progress_reaches_the_total_and_cancellation_stops_the_run()
    {
        var task = Fixture();
        var seen = new List<EvaluationProgress>();
        await MultipleChoiceEvaluator.EvaluateAsync(task, new BigramScorer(1), new MultipleChoiceOptions { BatchSize = 10 }, new SyncProgress<EvaluationProgress>(seen.Add));
        int total = task.Items.Sum(i => i.Choices.Count);
        Assert.Equal(new EvaluationProgress("fixture", total, total), seen[^1]);
        Assert.Equal(seen.Count, (total + 9) / 10);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => MultipleChoiceEvaluator.EvaluateAsync(task, new BigramScorer(1), cancellationToken: cts.Token));
    }

    [Fact]
    public void Invalid_options_and_tasks_name_the_problem()
    {
        var e = Assert.Throws<ArgumentException>(() => new MultipleChoiceOptions { BatchSize = 0 }.Validate());
        Assert.Contains("BatchSize", e.Message, StringComparison.Ordinal);
        var dup = new MultipleChoiceTask("t", [MultipleChoiceItem.WithGold("a", "c", ["x", "y"], 0), MultipleChoiceItem.WithGold("a", "c", ["x", "y"], 1)]);
        Assert.Contains("'a'", Assert.Throws<ArgumentException>(dup.Validate).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new ReportOptions { Confidence = 1 }.Validate());
        Assert.Throws<ArgumentException>(() => new MultipleChoiceItem("x", "c", ["a", "b"], [false, false]));
    }

    [Fact]
    public async Task Markdown_report_shows_tasks_categories_groups_and_comparisons()
    {
        var task = Fixture();
        var a = await MultipleChoiceEvaluator.EvaluateAsync(task, ScriptedScorer.Choosing(task, (_, item) => item.Labels.ToList().IndexOf(true)),
            new MultipleChoiceOptions { ModelName = "oracle" });
        var b = await MultipleChoiceEvaluator.EvaluateAsync(task, ScriptedScorer.Choosing(task, (_, item) => item.Labels.ToList().IndexOf(false)),
            new MultipleChoiceOptions { ModelName = "contrarian" });
        var c = PairedComparison.McNemar(a, b);
        Assert.Equal((0, 23, 0, 0), (c.BothCorrect, c.OnlyA, c.OnlyB, c.BothWrong));
        Assert.True(c.Exact);
        Assert.Equal(2 * Math.Pow(0.5, 23), c.PValue, 1e-15);
        string md = EvaluationReport.Create([a, b], comparisons: [c]).ToMarkdown();
        Assert.Contains("| oracle | fixture | 23 | acc | 1.000 |", md, StringComparison.Ordinal);
        Assert.Contains("| contrarian | fixture | 23 | acc | 0.000 |", md, StringComparison.Ordinal);
        Assert.Contains("| alpha | 8 | 1.000 |", md, StringComparison.Ordinal);
        Assert.Contains("Group exact match (every item of a group right): 1.000", md, StringComparison.Ordinal);
        Assert.Contains("| fixture | oracle | contrarian | 23 | 0 | 23 | 0 | 0 | 1.000 | 2.4E-7 | exact binomial |", md, StringComparison.Ordinal);
    }
}

