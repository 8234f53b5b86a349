using System.Text.Json.Nodes;
using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Experiment;
using StableAlignment.Core.Models;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Tests.Experiment;

/// <summary>The experiment as a library type: its steps hand over through the run folder, and each reads what the one before wrote.</summary>
public sealed class StableAlignmentExperimentTests
{
    /// <summary>A world and model small enough for a unit test, with the core alone (no MiniLM, no plots).</summary>
    internal static ExperimentOptions Tiny { get; } = ExperimentOptions.Quick with
    {
        Sandbox = new SandboxOptions { GridSize = 3, PeersPerInteraction = 3, MemorySeedSize = 10 },
        Rounds = 6,
        Model = new ExperimentModelOptions { HiddenSize = 32, Layers = 1, Heads = 2, KeyValueHeads = 1, MaxLength = 96 },
        Training = new ExperimentTrainingOptions { Epochs = 1, ValidationPoints = 2 },
        Evaluation = new ExperimentEvaluationOptions { JudgePrompts = 2, MaxNewTokens = 4 },
    };

    [Fact]
    public async Task The_steps_hand_over_through_the_run_folder_and_evaluation_batches_as_training_recorded()
    {
        using var dir = new TempFolder();
        var steps = new List<ExperimentStep>();
        // Six questions asked over and over, so every held-out query has several rated responses.
        var questions = QuestionSource.FromEnumerable(QuestionSource.BuiltIn().Questions.Take(6));
        var experiment = new StableAlignmentExperiment(Tiny, dir.Path, new ExperimentBackends { Questions = questions });
        string report = await experiment.RunAsync(new SyncProgress<ExperimentProgress>(p =>
        {
            if (steps.Count == 0 || steps[^1] != p.Step) steps.Add(p.Step);
        }));

        Assert.Equal(Enum.GetValues<ExperimentStep>(), steps);
        Assert.Equal(experiment.Folder.Report, report);
        string text = File.ReadAllText(report);
        foreach (var v in ExperimentVariant.Paper) Assert.Contains($"| {v.Name} |", text, StringComparison.Ordinal);
        Assert.Contains("No plots", text, StringComparison.Ordinal);
        foreach (var v in ExperimentVariant.Paper) Assert.True(File.Exists(Path.Combine(experiment.Folder.CheckpointDirectory(v), "model.bin")), v.Name);

        // Evaluation takes the held-out batching from training.json, not from training code: change it there and the
        // ranking items follow.
        int Widest() => ItemResultsJsonl.Read(experiment.Folder.ItemResultsFile).Where(r => r.Task == RankingEvaluation.TaskName)
            .SelectMany(r => r.Items).Max(i => i.Choices.Count);
        Assert.True(Widest() > 2, "held-out queries carry more than two responses");
        var training = JsonNode.Parse(File.ReadAllText(experiment.Folder.TrainingSummary))!;
        training["batches"]!["heldOut"]!["responsesPerQuery"] = 2;
        File.WriteAllText(experiment.Folder.TrainingSummary, training.ToJsonString());
        await experiment.EvaluateAsync();
        Assert.Equal(2, Widest());
    }

    [Fact]
    public async Task A_lora_run_trains_beside_full_fine_tuning_and_every_variant_exports()
    {
        using var dir = new TempFolder();
        var lora = ExperimentVariant.Full with { Name = "IL+SC+RA LoRA", Lora = new LoraOptions { Rank = 4, Alpha = 8 } };
        // DPO with LoRA: its frozen reference is the SFT phase's snapshot, which holds the adapters too.
        var dpoLora = ExperimentVariant.Dpo with { Name = "DPO LoRA", Lora = lora.Lora };
        var options = Tiny with { Variants = [ExperimentVariant.Sft, ExperimentVariant.Full, lora, dpoLora] };
        var questions = QuestionSource.FromEnumerable(QuestionSource.BuiltIn().Questions.Take(6));
        var experiment = new StableAlignmentExperiment(options, dir.Path, new ExperimentBackends { Questions = questions });
        await experiment.RunAsync();

        string report = File.ReadAllText(experiment.Folder.Report);
        Assert.Contains("| IL+SC+RA |", report, StringComparison.Ordinal);
        Assert.Contains("| IL+SC+RA LoRA |", report, StringComparison.Ordinal);
        var runs = JsonNode.Parse(File.ReadAllText(experiment.Folder.TrainingSummary))!["runs"]!.AsArray();
        Assert.Equal(4, runs.Count);
        long Trainable(int i) => runs[i]!["trainableParameters"]!.GetValue<long>();
        Assert.Equal(runs[1]!["parameters"]!.GetValue<long>(), Trainable(1));
        Assert.InRange(Trainable(2), 1, Trainable(1) / 2);
        Assert.Equal(Trainable(2), Trainable(3));
        Assert.Contains("| DPO LoRA |", report, StringComparison.Ordinal);

        await experiment.ExportAsync(lora.Name, ExportFormat.Peft, null, dir.File("adapter"));
        Assert.True(File.Exists(Path.Combine(dir.File("adapter"), "adapter_config.json")));
        await experiment.ExportAsync(ExperimentVariant.Full.Name, ExportFormat.Gguf, ExportDType.Q8_0, dir.File("model.gguf"));
        Assert.Equal("GGUF"u8.ToArray(), File.ReadAllBytes(dir.File("model.gguf"))[..4]);
        await experiment.ExportAsync(lora.Name, ExportFormat.HuggingFace, ExportDType.BF16, dir.File("hf"));
        Assert.True(File.Exists(Path.Combine(dir.File("hf"), "model.safetensors")));
        var missing = await Assert.ThrowsAsync<ExperimentException>(() => experiment.ExportAsync("IL+SC", ExportFormat.Gguf, null, dir.File("x.gguf")));
        Assert.Contains("no variant 'IL+SC'", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_training_seeds_train_and_evaluate_the_paper_rows_on_the_same_data_with_one_step_budget()
    {
        using var dir = new TempFolder();
        var questions = QuestionSource.FromEnumerable(QuestionSource.BuiltIn().Questions.Take(6));
        var experiment = new StableAlignmentExperiment(Tiny with { Seeds = 2, Seed = 5 }, dir.Path, new ExperimentBackends { Questions = questions });
        string report = File.ReadAllText(await experiment.RunAsync());

        var first = System.Text.Json.JsonSerializer.Deserialize<TrainingSummary>(File.ReadAllText(experiment.Folder.TrainingSummary), TrainingSummary.Json)!;
        var second = System.Text.Json.JsonSerializer.Deserialize<TrainingSummary>(
            File.ReadAllText(experiment.Folder.ForSeed(1, 6).TrainingSummary), TrainingSummary.Json)!;
        Assert.Equal((5, 6), (first.Seed, second.Seed));
        // Every trained run gets the full run's optimizer steps, the SFT phase of DPO and RRHF included; the start model none.
        Assert.All(first.Runs, r => Assert.Equal(first.StepBudget, r.Steps));
        Assert.Equal(0, first.Variants.Single(v => v.Name == "start").Steps);
        Assert.Equal(ExperimentVariant.Paper.Select(v => v.Name), first.Variants.Select(v => v.Name));
        Assert.True(File.Exists(Path.Combine(experiment.Folder.ForSeed(1, 6).CheckpointDirectory(ExperimentVariant.Dpo), "model.bin")));
        Assert.True(File.Exists(Path.Combine(experiment.Folder.ForSeed(1, 6).ItemResultsFile)));
        // The paper's table shape: mean ± sd over the two seeds, the paper's rows beside, the claims.
        foreach (var v in ExperimentVariant.Paper) Assert.Contains($"| {v.Name} |", report, StringComparison.Ordinal);
        Assert.Contains("± ", report, StringComparison.Ordinal);
        Assert.Contains("| DPO | DPO | 6.54 ± 1.6 |", report, StringComparison.Ordinal);
        foreach (int claim in new[] { 1, 2, 3 }) Assert.Contains($"Claim {claim}, ", report, StringComparison.Ordinal);
        Assert.Contains("Spearman", report, StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_the_default_run_every_realignment_group_holds_two_or_more_responses_with_distinct_ratings()
    {
        using var dir = new TempFolder();
        // The default run's world, protocol and dataset rules, for a few rounds.
        var options = ExperimentOptions.Default with { Rounds = 3 };
        Assert.True(options.Sandbox.MaxFeedbackPasses >= 2);
        var experiment = new StableAlignmentExperiment(options, dir.Path);
        await experiment.SimulateAsync();
        var dataset = AlignmentDataset.FromInteractions(SandboxLog.ReadRecords(experiment.Folder.SandboxLog), options.Dataset with { Seed = options.Seed });
        var groups = dataset.Records.Where((_, i) => dataset.Kinds[i] == SampleKind.Realignment).ToList();
        Assert.NotEmpty(groups);
        Assert.All(groups, g => Assert.True(g.Scores.Distinct().Count() >= 2, $"{g.Query}: [{string.Join(", ", g.Scores)}]"));
        // Some groups hold the answers of both passes.
        Assert.Contains(groups, g => g.Responses.Count >= 3);
    }

    [Fact]
    public async Task A_step_whose_input_is_missing_names_the_step_to_run_first()
    {
        using var dir = new TempFolder();
        var experiment = new StableAlignmentExperiment(Tiny, dir.Path);
        Assert.Contains("simulate", (await Assert.ThrowsAsync<ExperimentException>(() => experiment.BuildDatasetAsync())).Message, StringComparison.Ordinal);
        Assert.Contains("build-dataset", (await Assert.ThrowsAsync<ExperimentException>(() => experiment.TrainAsync())).Message, StringComparison.Ordinal);
        Assert.Contains("build-dataset", (await Assert.ThrowsAsync<ExperimentException>(() => experiment.EvaluateAsync())).Message, StringComparison.Ordinal);
        Assert.Contains("evaluate", (await Assert.ThrowsAsync<ExperimentException>(() => experiment.WriteReportAsync())).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_options_name_the_setting()
    {
        static string Message(ExperimentOptions o) => Assert.Throws<ArgumentException>(() => new StableAlignmentExperiment(o, "unused")).Message;
        Assert.Contains("Rounds", Message(Tiny with { Rounds = 0 }), StringComparison.Ordinal);
        Assert.Contains("GridSize", Message(Tiny with { Sandbox = Tiny.Sandbox with { GridSize = 0 } }), StringComparison.Ordinal);
        Assert.Contains("Epochs", Message(Tiny with { Training = Tiny.Training with { Epochs = 0 } }), StringComparison.Ordinal);
        Assert.Contains("Heads", Message(Tiny with { Model = Tiny.Model with { Heads = 3 } }), StringComparison.Ordinal);
        Assert.Contains("'warm-up'", Message(Tiny with { Variants = [new ExperimentVariant("x", AlignmentRecipe.SftOnly, "warm-up")] }), StringComparison.Ordinal);
        Assert.Contains("'IL' twice", Message(Tiny with { Variants = [ExperimentVariant.Imitation, ExperimentVariant.Imitation] }), StringComparison.Ordinal);
        Assert.Contains("Seeds", Message(Tiny with { Seeds = 0 }), StringComparison.Ordinal);
        Assert.Contains("BaselineSftShare", Message(Tiny with { Training = Tiny.Training with { BaselineSftShare = 1 } }), StringComparison.Ordinal);
        Assert.Contains("Stable Alignment", Message(Tiny with { Variants = [ExperimentVariant.Start, ExperimentVariant.Sft] }), StringComparison.Ordinal);
    }

    [Fact]
    public void The_quick_preset_is_the_default_run_made_smaller()
    {
        var d = ExperimentOptions.Default;
        var q = ExperimentOptions.Quick;
        Assert.Equal((6, 80, 128, 32), (d.Sandbox.GridSize, d.Rounds, d.Model.HiddenSize, d.Evaluation.JudgePrompts));
        Assert.Equal((4, 24, 96, 12), (q.Sandbox.GridSize, q.Rounds, q.Model.HiddenSize, q.Evaluation.JudgePrompts));
        Assert.Equal(d.Training, q.Training);
        Assert.Equal((1, 1), (d.Seeds, q.Seeds));
        Assert.Equal((2, 2), (d.Sandbox.MaxFeedbackPasses, q.Sandbox.MaxFeedbackPasses));
        // One seed for every step: the sandbox takes the experiment's.
        Assert.Equal(42, d.SeededSandbox.Seed);
        Assert.Equal(7, (d with { Seed = 7 }).SeededSandbox.Seed);
    }
}
