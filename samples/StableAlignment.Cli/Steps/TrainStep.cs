using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using Spectre.Console;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;

namespace StableAlignment.Cli.Steps;

/// <summary>What the train step records for the report.</summary>
internal sealed record VariantTraining(string Variant, int Steps, double Seconds, double? ValidationRankingAccuracy);

/// <summary>
/// Step 3: the SFT-only baseline and Stable Alignment's three stages from the same initial weights. IL, IL+SC and
/// IL+SC+RA are the stage boundaries of one run (a snapshot is saved as each stage completes), exactly as the paper's
/// ablations stack the stages.
/// </summary>
internal static class TrainStep
{
    /// <summary>The objective's settings for a run (margin M and weight lambda; the reference's README uses M = 10).</summary>
    public static ContrastivePreferenceOptions LossOptions(RunSettings settings) => new() { Margin = settings.Margin, RankingWeight = settings.RankingWeight };

    public static async Task RunAsync(RunLayout layout, RunSettings settings, string? huggingFaceModel, CancellationToken ct)
    {
        string tokenizerFile = huggingFaceModel is null
            ? RunLayout.Require(layout.VocabularyFile, "build-dataset")
            : RunLayout.Require(Path.Combine(huggingFaceModel, "tokenizer.json"), "--init-from");
        Tokenizer tokenizer = ModelBundle.LoadTokenizer(tokenizerFile);
        var train = await AlignmentDataset.LoadAsync(RunLayout.Require(layout.TrainFile, "build-dataset"), cancellationToken: ct);
        var validation = await AlignmentDataset.LoadAsync(RunLayout.Require(layout.ValidationFile, "build-dataset"), cancellationToken: ct);

        var imitation = Batches(train, SampleKind.Imitation, tokenizer, settings, BatchGrouping.ByQuery, 3);
        var selfCritic = Batches(train, SampleKind.SelfCritic, tokenizer, settings, BatchGrouping.EachResponse, 1);
        var realignment = Batches(train, SampleKind.Realignment, tokenizer, settings, BatchGrouping.ByQuery, 3);
        var heldOut = HeldOutBatches(validation, tokenizer, settings);

        var results = new List<VariantTraining>();
        foreach (var recipe in new[] { AlignmentRecipe.SftOnly, AlignmentRecipe.ImitationSelfCriticRealignment })
        {
            ct.ThrowIfCancellationRequested();
            string run = recipe == AlignmentRecipe.SftOnly ? Variants.SftBaseline : Variants.Full;
            using var model = huggingFaceModel is null
                ? new CausalLanguageModel(TinyConfig(settings, tokenizer), seed: settings.Seed)
                : CausalLanguageModel.FromHuggingFace(huggingFaceModel);
            // Stages after the first fine-tune what the first learned, at a lower peak rate (same schedule for both recipes).
            var stages = AlignmentStages.For(recipe, imitation, selfCritic, realignment, heldOut, settings.Epochs)
                .Select((s, i) => i == 0 ? s : s with { LearningRate = settings.LearningRate * settings.LaterStageLearningRateScale })
                .ToList();
            int totalSteps = stages.Sum(s => (s.Train.Count ?? 0) * s.Epochs);
            using var trainer = new StableAlignmentTrainer(model, new TrainerOptions
            {
                LearningRate = settings.LearningRate,
                Loss = LossOptions(settings),
                // About 16 points per curve: validation scores every held-out query, so more would cost real time.
                ValidateEverySteps = Math.Max(10, totalSteps / 16),
                MetricsDirectory = layout.MetricsDirectory(Variants.FolderName(run)),
            });
            var clock = Stopwatch.StartNew();
            int lastStep = 0;
            TrainingReport report = null!;
            AnsiConsole.Progress().Columns(Terminal.ProgressColumns).Start(ctx =>
            {
                var bar = ctx.AddTask($"train {run}", maxValue: Math.Max(1, totalSteps));
                var progress = new Terminal.SynchronousProgress<TrainingProgress>(p =>
                {
                    if (p.Kind == TrainingEventKind.Step && p.Step is { } step)
                    {
                        lastStep = step.Position.GlobalStep;
                        bar.Value = lastStep;
                        bar.Description = $"train {run} · {p.StageName} · loss {step.Loss:F3}";
                    }
                    else if (p.Kind == TrainingEventKind.StageCompleted && recipe != AlignmentRecipe.SftOnly)
                    {
                        // Each completed stage of the full run is one of the paper's ablation variants.
                        string variant = Variants.AfterStage(p.StageName);
                        ModelBundle.Save(layout.CheckpointDirectory(Variants.FolderName(variant)), model, tokenizerFile);
                        results.Add(new VariantTraining(variant, lastStep, clock.Elapsed.TotalSeconds, p.Validation?.RankingAccuracy));
                    }
                });
                report = trainer.Train(stages, progress, ct);
                bar.Value = bar.MaxValue;
            });
            if (recipe == AlignmentRecipe.SftOnly)
            {
                ModelBundle.Save(layout.CheckpointDirectory(Variants.FolderName(run)), model, tokenizerFile);
                results.Add(new VariantTraining(run, report.GlobalSteps, clock.Elapsed.TotalSeconds,
                    report.Stages[^1].FinalValidation?.RankingAccuracy));
            }
            AnsiConsole.MarkupLineInterpolated(System.Globalization.CultureInfo.InvariantCulture,
                $"  [green]✓[/] {run}: {report.GlobalSteps} steps ({report.SkippedSteps} skipped) in {clock.Elapsed.TotalSeconds:F0} s, {report.TokensPerSecond:F0} tokens/s; held-out ranking accuracy per stage: {string.Join(", ", report.Stages.Select(s => $"{s.Name} {s.FinalValidation?.RankingAccuracy:P0}"))}");
        }
        await File.WriteAllTextAsync(layout.TrainingSummary, JsonSerializer.Serialize(results, Json.Options), ct);
    }

    private static CausalLanguageModelConfig TinyConfig(RunSettings settings, Tokenizer tokenizer) => new()
    {
        VocabSize = tokenizer is CompactVocabularyTokenizer compact ? compact.VocabularySize : 50257,
        HiddenSize = settings.HiddenSize,
        IntermediateSize = settings.HiddenSize * 11 / 4,
        NumLayers = settings.Layers,
        NumHeads = 4,
        NumKeyValueHeads = 2,
        MaxSequenceLength = settings.MaxLength,
    };

    private static PreferenceBatcher Batches(AlignmentDataset dataset, SampleKind kind, Tokenizer tokenizer, RunSettings settings,
        BatchGrouping grouping, int responsesPerQuery)
    {
        var subset = dataset.OfKind(kind);
        if (subset.Records.Count == 0) throw new UserFacingException($"The training set has no {kind} samples: simulate more rounds.");
        return subset.CreateBatcher(tokenizer, new PreferenceBatchOptions
        {
            MaxLength = settings.MaxLength,
            Grouping = grouping,
            ResponsesPerQuery = responsesPerQuery,
            GroupsPerBatch = grouping == BatchGrouping.EachResponse ? settings.GroupsPerBatch * 3 : settings.GroupsPerBatch,
            Seed = settings.Seed,
            OverlongResponse = OverlongResponsePolicy.Truncate,
        });
    }

    /// <summary>Held-out imitation queries with all their responses: the ranking-accuracy yardstick for every variant.</summary>
    public static PreferenceBatcher HeldOutBatches(AlignmentDataset validation, Tokenizer tokenizer, RunSettings settings) =>
        Batches(validation, SampleKind.Imitation, tokenizer, settings, BatchGrouping.ByQuery, 16);
}
