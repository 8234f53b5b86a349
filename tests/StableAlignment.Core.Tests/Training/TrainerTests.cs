using StableAlignment.Core.Models;
using StableAlignment.Core.Training;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

public class TrainerTests
{
    private static readonly CausalLanguageModelConfig Tiny = new()
    {
        VocabSize = 23, HiddenSize = 16, IntermediateSize = 32, NumLayers = 1, NumHeads = 2, NumKeyValueHeads = 1, MaxSequenceLength = 16,
    };

    private static TrainerOptions Fast => new() { LearningRate = 1e-2, WarmupRatio = 0.1, ValidateEverySteps = 0 };


    [Fact]
    public void Loss_falls_and_held_out_ranking_improves_on_a_fixed_small_dataset()
    {
        using var model = new CausalLanguageModel(Tiny, seed: 1);
        using var trainer = new StableAlignmentTrainer(model, Fast with { ValidateEverySteps = 20 });
        var validation = new SyntheticPreferenceSource(tag: 1, batches: 2, groups: 4, seed: 99);
        var before = trainer.Validate(validation);
        var report = trainer.Train([new TrainingStage { Name = "imitation", Train = new SyntheticPreferenceSource(1, batches: 20, groups: 4), Epochs = 3, Validation = validation }]);

        Assert.Equal(60, report.GlobalSteps);
        var first = report.Steps.Take(5).Average(s => s.Loss);
        var last = report.Steps.TakeLast(5).Average(s => s.Loss);
        Assert.True(last < 0.7 * first, $"loss should fall: first steps {first:F3}, last steps {last:F3}");
        var after = report.Stages.Single().FinalValidation!;
        Assert.True(after.MeanBestNll < before.MeanBestNll, $"held-out best NLL {before.MeanBestNll:F3} -> {after.MeanBestNll:F3}");
        Assert.True(after.RankingAccuracy > before.RankingAccuracy, $"held-out ranking accuracy {before.RankingAccuracy:F2} -> {after.RankingAccuracy:F2}");
        Assert.Equal(3, report.Validations.Count); // steps 20 and 40, then the stage end
    }

    [Theory]
    [InlineData(AlignmentRecipe.Imitation, "1C")]
    [InlineData(AlignmentRecipe.ImitationSelfCritic, "1C 2S")]
    [InlineData(AlignmentRecipe.ImitationSelfCriticRealignment, "1C 2S 3C")]
    public void Stages_train_on_their_own_data_with_their_objective(AlignmentRecipe recipe, string expected)
    {
        using var model = new CausalLanguageModel(Tiny, seed: 2);
        var calls = new List<(long Tag, bool SftOnly)>();
        using var trainer = new StableAlignmentTrainer(model, Fast with { LossFactory = o => new RecordingLoss(new ContrastivePreferenceLoss(o), calls) });
        var stages = AlignmentStages.For(recipe,
            new TaggingSource(new SyntheticPreferenceSource(1, 2)), new TaggingSource(new SyntheticPreferenceSource(2, 3)), new TaggingSource(new SyntheticPreferenceSource(3, 2)));
        var report = trainer.Train(stages);

        // Collapse the calls into runs of (tag, objective): one run per stage, in order.
        var runs = new List<string>();
        foreach (var (tag, sft) in calls)
        {
            var key = $"{tag}{(sft ? 'S' : 'C')}";
            if (runs.Count == 0 || runs[^1] != key) runs.Add(key);
        }
        Assert.Equal(expected, string.Join(' ', runs));
        Assert.Equal(stages.Select(s => s.Objective), report.Stages.Select(s => s.Objective));
        Assert.Equal(stages.Sum(s => s.Train.Count!.Value), calls.Count);
    }

    [Theory]
    [InlineData(AlignmentRecipe.SftOnly, 7, 0, "sft:Sft")]
    [InlineData(AlignmentRecipe.Dpo, 7, 3, "sft:Sft dpo:Dpo")]
    [InlineData(AlignmentRecipe.Rrhf, 7, 3, "sft:Sft rrhf:Rrhf")]
    [InlineData(AlignmentRecipe.Rrhf, 7, 0, "rrhf:Rrhf")]
    public void A_baseline_spends_exactly_its_step_budget_and_dpo_uses_the_model_after_its_sft_phase(AlignmentRecipe recipe, int steps, int sftSteps, string expected)
    {
        using var temp = new TempFolder("sa-baseline-");
        using var model = new CausalLanguageModel(Tiny, seed: 3);
        using var reference = ReferenceModel.FromCheckpoint(temp.File("after-sft"));
        var union = new SyntheticPreferenceSource(tag: 4, batches: 3);
        var stages = AlignmentStages.Baseline(recipe, union, steps, sftSteps, reference, validation: new SyntheticPreferenceSource(tag: 4, batches: 1, seed: 9));
        using var trainer = new StableAlignmentTrainer(model, Fast with { StageSnapshots = new Dictionary<string, string> { [AlignmentStages.Sft] = temp.File("after-sft") } });
        var report = trainer.Train(stages);

        Assert.Equal(steps, report.GlobalSteps);
        Assert.Equal(expected, string.Join(' ', report.Stages.Select(s => $"{s.Name}:{s.Objective}")));
        Assert.All(report.Steps, s => Assert.True(double.IsFinite(s.Loss)));
        // DPO scored every distinct row of its batches (and of the validation batch) under the SFT snapshot.
        Assert.Equal(recipe == AlignmentRecipe.Dpo, reference.CachedRows > 0);
    }

    [Fact]
    public void Baseline_and_paper_recipes_refuse_each_others_builders()
    {
        var source = new SyntheticPreferenceSource(tag: 1, batches: 2);
        Assert.Equal("recipe", Assert.Throws<ArgumentException>(() => AlignmentStages.For(AlignmentRecipe.Dpo, source)).ParamName);
        Assert.Equal("recipe", Assert.Throws<ArgumentException>(() => AlignmentStages.Baseline(AlignmentRecipe.Imitation, source, 4, 1)).ParamName);
        Assert.Equal("sftSteps", Assert.Throws<ArgumentException>(() => AlignmentStages.Baseline(AlignmentRecipe.Dpo, source, 4, 4)).ParamName);
        Assert.Equal("Reference", Assert.Throws<ArgumentException>(() => AlignmentStages.Baseline(AlignmentRecipe.Dpo, source, 4, 1)).ParamName);
    }

    [Fact]
    public void Each_stage_named_for_a_snapshot_is_saved_with_the_weights_it_ended_with_and_the_metrics_read_back()
    {
        using var temp = new TempFolder("sa-snapshots-");
        using var model = new CausalLanguageModel(Tiny, seed: 5);
        var weightsAfter = new Dictionary<string, Dictionary<string, Tensor>>(StringComparer.Ordinal);
        var options = Fast with
        {
            ValidateEverySteps = 2,
            MetricsDirectory = temp.File("metrics"),
            StageSnapshots = new Dictionary<string, string> { ["first"] = temp.File("after-first"), ["second"] = temp.File("after-second") },
        };
        using var trainer = new StableAlignmentTrainer(model, options);
        var report = trainer.Train(
        [
            new() { Name = "first", Train = new SyntheticPreferenceSource(1, 3), Validation = new SyntheticPreferenceSource(1, 1, seed: 7) },
            new() { Name = "second", Train = new SyntheticPreferenceSource(2, 2), Objective = TrainingObjective.Sft },
        ], new SyncProgress<TrainingProgress>(p =>
        {
            if (p.Kind == TrainingEventKind.StageCompleted)
                weightsAfter[p.StageName] = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        }));

        foreach (var (stage, folder) in options.StageSnapshots)
        {
            using var saved = CausalLanguageModel.LoadCheckpoint(folder);
            foreach (var (name, tensor) in saved.state_dict()) Assert.True(tensor.eq(weightsAfter[stage][name]).all().item<bool>(), $"{stage}: {name}");
        }
        Assert.Equal([3, 5], report.Stages.Select(s => s.GlobalSteps));

        // What the trainer logged is what the history reads back, step for step.
        var history = TrainingHistory.Read(options.MetricsDirectory);
        Assert.Equal(report.Steps, history.Steps);
        Assert.Equal(report.Validations, history.Validations);
        File.AppendAllText(Path.Combine(options.MetricsDirectory, "metrics.jsonl"), "{\"kind\": \"step\"}\n");
        var ex = Assert.Throws<InvalidDataException>(() => TrainingHistory.Read(options.MetricsDirectory));
        Assert.Contains($"line {report.Steps.Count + report.Validations.Count + 1}", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(3)] // the first stage's first epoch ends with a short window
    [InlineData(5)] // mid-epoch in the first stage's second epoch
    [InlineData(7)] // inside the second stage
    public void A_resumed_run_reaches_the_same_weights_as_an_uninterrupted_one(int stopAfterStep)
    {
        // Odd batch counts with accumulation 2 leave a short window at each epoch's end.
        static IReadOnlyList<TrainingStage> Stages() =>
        [
            new() { Name = "imitation", Train = new SyntheticPreferenceSource(1, 5), Epochs = 2, Validation = new SyntheticPreferenceSource(1, 1, seed: 7) },
            new() { Name = "self-critic", Train = new SyntheticPreferenceSource(2, 3), Objective = TrainingObjective.Sft },
        ];
        var options = Fast with { GradientAccumulationSteps = 2, ValidateEverySteps = 2 };

        using var reference = new CausalLanguageModel(Tiny, seed: 3);
        using (var trainer = new StableAlignmentTrainer(reference, options)) trainer.Train(Stages());

        using var temp = new TempFolder("sa-resume-");
        string dir = temp.Path;
        using var cts = new CancellationTokenSource();
        using (var interrupted = new CausalLanguageModel(Tiny, seed: 3))
        using (var trainer = new StableAlignmentTrainer(interrupted, options with { CheckpointDirectory = dir }))
        {
            var stop = new SyncProgress<TrainingProgress>(p => { if (p.Step?.Position.GlobalStep == stopAfterStep) cts.Cancel(); });
            Assert.Throws<OperationCanceledException>(() => trainer.Train(Stages(), stop, cts.Token));
        }

        // A fresh process: different initial weights and optimizer, everything comes from the checkpoint.
        using var resumed = new CausalLanguageModel(Tiny, seed: 123);
        using (var trainer = new StableAlignmentTrainer(resumed, options with { CheckpointDirectory = dir }))
        {
            trainer.LoadCheckpoint(dir);
            Assert.Equal(stopAfterStep, trainer.Position.GlobalStep);
            var report = trainer.Train(Stages());
            Assert.Equal(3 * 2 + 2, report.GlobalSteps); // ceil(5/2) = 3 per epoch x 2 epochs, then ceil(3/2) = 2
        }

        var expected = reference.state_dict();
        foreach (var (name, actual) in resumed.state_dict())
            Assert.True(allclose(expected[name], actual, rtol: 1e-5, atol: 1e-6), $"parameter {name} differs after resuming at step {stopAfterStep}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_non_finite_step_is_skipped_and_counted_and_leaves_the_weights_alone(bool gradientOnly)
    {
        using var model = new CausalLanguageModel(Tiny, seed: 4);
        var calls = new List<(long, bool)>();
        var options = Fast with { LossFactory = o => new RecordingLoss(new ContrastivePreferenceLoss(o), calls, tag => tag == 9, gradientOnly) };
        using var trainer = new StableAlignmentTrainer(model, options);
        Dictionary<string, Tensor>? beforePoison = null;
        var stages = new TrainingStage[]
        {
            new() { Name = "clean", Train = new TaggingSource(new SyntheticPreferenceSource(1, 2)) },
            new() { Name = "poisoned", Train = new TaggingSource(new SyntheticPreferenceSource(9, 1)) },
            new() { Name = "clean again", Train = new TaggingSource(new SyntheticPreferenceSource(1, 2)) },
        };
        var snapshot = new SyncProgress<TrainingProgress>(p =>
        {
            if (p.Kind == TrainingEventKind.StageCompleted && p.StageName == "clean")
                beforePoison = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        });
        Dictionary<string, Tensor>? afterPoison = null;
        var report = trainer.Train(stages, new SyncProgress<TrainingProgress>(p =>
        {
            snapshot.Report(p);
            if (p.Kind == TrainingEventKind.StageCompleted && p.StageName == "poisoned")
                afterPoison = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        }));

        Assert.Equal(1, report.SkippedSteps);
        Assert.Equal([0, 1, 0], report.Stages.Select(s => s.SkippedSteps));
        var skipped = report.Steps.Single(s => s.Skipped);
        Assert.Equal("poisoned", skipped.StageName);
        Assert.False(double.IsFinite(gradientOnly ? skipped.GradientNorm : skipped.Loss));
        foreach (var (name, value) in beforePoison!) Assert.True(value.allclose(afterPoison![name], 0, 0), $"{name} changed in a skipped step");
        Assert.All(model.parameters(), p => Assert.True(p.isfinite().all().item<bool>()));
        Assert.Equal(5, report.GlobalSteps);
    }

    [Fact]
    public void Too_many_non_finite_steps_in_a_row_stop_the_run_with_a_clear_error()
    {
        using var model = new CausalLanguageModel(Tiny, seed: 5);
        var options = Fast with { MaxConsecutiveNonFiniteSteps = 3, LossFactory = o => new RecordingLoss(new ContrastivePreferenceLoss(o), [], _ => true) };
        using var trainer = new StableAlignmentTrainer(model, options);
        var ex = Assert.Throws<TrainingDivergedException>(() => trainer.Train([new TrainingStage { Name = "bad", Train = new TaggingSource(new SyntheticPreferenceSource(1, 10)) }]));
        Assert.Contains("3 consecutive", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'bad'", ex.Message, StringComparison.Ordinal);
        Assert.Equal(3, trainer.Position.GlobalStep);
    }

    [Fact]
    public void A_stage_with_its_own_learning_rate_peaks_there_and_the_others_keep_the_trainers()
    {
        using var model = new CausalLanguageModel(Tiny, seed: 6);
        using var trainer = new StableAlignmentTrainer(model, Fast with { LearningRate = 1e-2, WarmupRatio = 0, MinLearningRateRatio = 0 });
        var report = trainer.Train(
        [
            new TrainingStage { Name = "first", Train = new SyntheticPreferenceSource(1, 4) },
            new TrainingStage { Name = "second", Train = new SyntheticPreferenceSource(2, 4), LearningRate = 2e-3 },
        ]);
        // Without warmup each stage starts at its peak and decays by the cosine over its own 4 steps.
        double[] cosine = [.. Enumerable.Range(0, 4).Select(i => 0.5 * (1 + Math.Cos(Math.PI * i / 4)))];
        Assert.Equal(cosine.Select(c => 1e-2 * c), report.Steps.Where(s => s.StageName == "first").Select(s => s.LearningRate), new ToleranceComparer(1e-12));
        Assert.Equal(cosine.Select(c => 2e-3 * c), report.Steps.Where(s => s.StageName == "second").Select(s => s.LearningRate), new ToleranceComparer(1e-12));
        var bad = new TrainingStage { Name = "bad", Train = new SyntheticPreferenceSource(1, 1), LearningRate = 0 };
        Assert.Contains("LearningRate", Assert.Throws<ArgumentException>(() => bad.Validate()).Message, StringComparison.Ordinal);
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(double obj) => 0;
    }

    [Fact]
    public void Learning_rate_warms_up_linearly_then_follows_a_cosine()
    {
        using var model = new CausalLanguageModel(Tiny, seed: 6);
        using var trainer = new StableAlignmentTrainer(model, new TrainerOptions { LearningRate = 2.0, WarmupRatio = 0.2, MinLearningRateRatio = 0.1 });
        // 10 steps: warmup 2 steps (1.0, 2.0), then 8 steps of cosine from 2.0 towards 0.2.
        Assert.Equal(1.0, trainer.LearningRate(0, 10, 2.0), 12);
        Assert.Equal(2.0, trainer.LearningRate(1, 10, 2.0), 12);
        Assert.Equal(2.0, trainer.LearningRate(2, 10, 2.0), 12);
        Assert.Equal(0.2 + 1.8 * 0.5 * (1 + Math.Cos(Math.PI * 4 / 8)), trainer.LearningRate(6, 10, 2.0), 12);
        Assert.Equal(0.2 + 1.8 * 0.5 * (1 + Math.Cos(Math.PI * 7 / 8)), trainer.LearningRate(9, 10, 2.0), 12);
    }

    [Fact]
    public void Metrics_are_written_as_json_lines_and_csv()
    {
        using var temp = new TempFolder("sa-metrics-");
        string dir = temp.Path;
        using var model = new CausalLanguageModel(Tiny, seed: 7);
        using var trainer = new StableAlignmentTrainer(model, Fast with { MetricsDirectory = dir, ValidateEverySteps = 2 });
        var report = trainer.Train([new TrainingStage { Name = "imitation", Train = new SyntheticPreferenceSource(1, 5), Validation = new SyntheticPreferenceSource(1, 1, seed: 3) }]);

        var train = File.ReadAllLines(Path.Combine(dir, "train.csv"));
        var validation = File.ReadAllLines(Path.Combine(dir, "validation.csv"));
        Assert.Equal(report.Steps.Count + 1, train.Length);
        Assert.Equal(report.Validations.Count + 1, validation.Length);
        Assert.Equal(report.Steps.Count + report.Validations.Count, File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Length);
        Assert.StartsWith("stage,global_step", train[0], StringComparison.Ordinal);
        // The core draws nothing (the curves are the Plots package's): no PNG, so no plotting dependency.
        Assert.Empty(Directory.GetFiles(dir, "*.png"));
    }

    [Fact]
    public void Invalid_options_name_the_option()
    {
        Assert.Equal("GradientAccumulationSteps", Assert.Throws<ArgumentException>(() => new TrainerOptions { GradientAccumulationSteps = 0 }.Validate()).ParamName);
        Assert.Equal("CheckpointEverySteps", Assert.Throws<ArgumentException>(() => new TrainerOptions { CheckpointEverySteps = 5 }.Validate()).ParamName);
        Assert.Equal("selfCritic", Assert.Throws<ArgumentException>(() => AlignmentStages.For(AlignmentRecipe.ImitationSelfCritic, new SyntheticPreferenceSource(1, 1))).ParamName);
        using var model = new CausalLanguageModel(Tiny, seed: 8);
        Assert.Throws<ArgumentException>(() => new StableAlignmentTrainer(model, new TrainerOptions { LossBackend = PreferenceLossBackend.Cuda }));
    }
}
