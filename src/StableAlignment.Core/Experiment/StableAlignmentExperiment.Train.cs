using System.Globalization;
using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Experiment;

public sealed partial class StableAlignmentExperiment
{
    /// <summary>
    /// Step 3: trains one run per recipe among the variants (the SFT-only baseline, then Stable Alignment's
    /// imitation, self-critic and realignment stages), all from the same initial weights. The trainer saves each
    /// variant as a snapshot when its stage completes. Writes <see cref="RunFolder.TrainingSummary"/> with everything
    /// evaluation needs: the variants, the loss options and the batch recipe.
    /// </summary>
    /// <param name="progress">Receives one report per optimizer step.</param>
    /// <param name="cancellationToken">Stops between optimizer steps.</param>
    /// <returns>What was trained.</returns>
    /// <exception cref="ExperimentException">The dataset is missing, or lacks a kind of sample a recipe needs.</exception>
    public async Task<TrainingSummary> TrainAsync(IProgress<ExperimentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var training = Options.Training;
        string tokenizerFile = Options.Model.InitFrom is { } init
            ? RunFolder.Require(Path.Combine(init, ModelCheckpoint.HuggingFaceTokenizerFileName), "--init-from")
            : RunFolder.Require(Folder.VocabularyFile, "build-dataset");
        Tokenizer tokenizer = ModelCheckpoint.LoadTokenizer(tokenizerFile);
        var train = await AlignmentDataset.LoadAsync(RunFolder.Require(Folder.TrainFile, "build-dataset"), cancellationToken: cancellationToken).ConfigureAwait(false);
        var validation = await AlignmentDataset.LoadAsync(RunFolder.Require(Folder.ValidationFile, "build-dataset"), cancellationToken: cancellationToken).ConfigureAwait(false);

        // Tokenized once for every run: the batchers replay each epoch identically, whoever consumes them.
        var batches = AlignmentBatchRecipe.Paper(Options.Model.MaxLength, training.GroupsPerBatch, Options.Seed);
        var sources = new Dictionary<SampleKind, PreferenceBatcher>();
        PreferenceBatcher Source(SampleKind kind)
        {
            if (sources.TryGetValue(kind, out var source)) return source;
            var subset = train.OfKind(kind);
            if (subset.Records.Count == 0) throw new ExperimentException($"The training set has no {kind} samples: simulate more rounds.");
            return sources[kind] = subset.CreateBatcher(tokenizer, batches.For(kind), cancellationToken: cancellationToken);
        }
        PreferenceBatcher heldOut;
        try
        {
            heldOut = batches.HeldOutBatcher(validation, tokenizer);
        }
        catch (ArgumentException e)
        {
            throw new ExperimentException($"{e.Message} Simulate more rounds or hold out a larger share.", e);
        }

        var trained = new List<TrainedVariant>();
        var runs = new List<TrainedRun>();
        foreach (var run in Runs())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var recipe = run.First().Recipe;
            var lora = run.First().Lora;
            var last = run.OrderBy(v => AlignmentStages.NamesOf(recipe).ToList().IndexOf(v.Stage)).Last();
            using var model = Options.Model.InitFrom is { } checkpoint
                ? CausalLanguageModel.FromHuggingFace(checkpoint)
                : new CausalLanguageModel(TinyConfig(tokenizer), seed: Options.Seed);
            bool needsSelfCritic = recipe != AlignmentRecipe.Imitation;
            bool needsRealignment = recipe is AlignmentRecipe.ImitationSelfCriticRealignment or AlignmentRecipe.SftOnly;
            // Stages after the first fine-tune what the first learned, at a lower peak rate (the same for every recipe).
            var stages = AlignmentStages.For(recipe, Source(SampleKind.Imitation), needsSelfCritic ? Source(SampleKind.SelfCritic) : null,
                    needsRealignment ? Source(SampleKind.Realignment) : null, heldOut, training.Epochs)
                .Select((s, i) => i == 0 ? s : s with { LearningRate = training.LearningRate * training.LaterStageLearningRateScale })
                .ToList();
            int totalSteps = stages.Sum(s => (s.Train.Count ?? 0) * s.Epochs);
            string metrics = Folder.MetricsDirectory(last);
            using var trainer = new StableAlignmentTrainer(model, new TrainerOptions
            {
                LearningRate = training.LearningRate,
                Loss = training.Loss,
                ValidateEverySteps = Math.Max(10, totalSteps / training.ValidationPoints),
                MetricsDirectory = metrics,
                StageSnapshots = run.ToDictionary(v => v.Stage, Folder.CheckpointDirectory, StringComparer.Ordinal),
                Lora = lora,
                LoraSeed = Options.Seed,
            });
            string activity = $"train {last.Name}";
            var relay = new Relay<TrainingProgress>(p =>
            {
                if (p.Kind == TrainingEventKind.Step && p.Step is { } step)
                {
                    progress?.Report(new ExperimentProgress(ExperimentStep.Train, activity, step.Position.GlobalStep, Math.Max(1, totalSteps),
                        string.Create(CultureInfo.InvariantCulture, $"{p.StageName} · loss {step.Loss:F3}")));
                }
            });
            var report = trainer.Train(stages, relay, cancellationToken);
            foreach (var variant in run)
            {
                ModelCheckpoint.CopyTokenizer(tokenizerFile, Folder.CheckpointDirectory(variant));
                var stage = report.Stages.First(s => s.Name == variant.Stage);
                trained.Add(new TrainedVariant(variant.Name, Folder.Relative(Folder.CheckpointDirectory(variant)), stage.GlobalSteps,
                    stage.ElapsedSeconds, stage.FinalValidation?.RankingAccuracy));
            }
            runs.Add(new TrainedRun(last.Name, recipe, Folder.Relative(metrics), report.GlobalSteps, report.SkippedSteps, report.TokensPerSecond)
            {
                Lora = lora,
                TrainableParameters = model.TrainableParameterCount,
                Parameters = model.ParameterCount,
                PeakResidentBytes = report.PeakResidentBytes,
            });
            Backends.Plots?.Training(TrainingHistory.Read(metrics), metrics);
        }

        // Rows in the options' order, whatever order the runs trained in.
        var ordered = Options.Variants.Select(v => trained.Single(t => t.Name == v.Name)).ToList();
        var summary = new TrainingSummary(training.Loss, batches, ordered, runs);
        await TrainingSummary.WriteAsync(Folder.TrainingSummary, summary, cancellationToken).ConfigureAwait(false);
        return summary;
    }

    private CausalLanguageModelConfig TinyConfig(Tokenizer tokenizer) => new()
    {
        VocabSize = tokenizer is CompactVocabularyTokenizer compact ? compact.VocabularySize : 50257,
        HiddenSize = Options.Model.HiddenSize,
        IntermediateSize = Options.Model.HiddenSize * 11 / 4,
        NumLayers = Options.Model.Layers,
        NumHeads = Options.Model.Heads,
        NumKeyValueHeads = Options.Model.KeyValueHeads,
        MaxSequenceLength = Options.Model.MaxLength,
    };
}
