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
    /// evaluation needs: the variants, the loss options, the batch recipe and the training run's id, which every
    /// checkpoint records too. The trainer checkpoints as it goes, so an interrupted train run again with the same
    /// inputs resumes from its last checkpoint, and a finished one is not trained again.
    /// </summary>
    /// <param name="progress">Receives one report per optimizer step.</param>
    /// <param name="cancellationToken">Stops between optimizer steps.</param>
    /// <returns>What was trained.</returns>
    /// <exception cref="ExperimentException">The dataset is missing, or lacks a kind of sample a recipe needs.</exception>
    public async Task<TrainingSummary> TrainAsync(IProgress<ExperimentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var step = EnterStep();
        var training = Options.Training;
        string tokenizerFile = Options.Model.InitFrom is { } init
            ? RunFolder.RequireGiven(Path.Combine(init, ModelCheckpoint.HuggingFaceTokenizerFileName), "the tokenizer of the Hugging Face checkpoint to start from")
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

        string runId = TrainingRun.IdOf(Options, [tokenizerFile, Folder.TrainFile, Folder.ValidationFile]);
        var trained = new List<TrainedVariant>();
        var runs = new List<TrainedRun>();
        foreach (var run in Runs())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var recipe = run.First().Recipe;
            var lora = run.First().Lora;
            var last = run.OrderBy(v => AlignmentStages.NamesOf(recipe).ToList().IndexOf(v.Stage)).Last();
            string metrics = Folder.MetricsDirectory(last);
            string state = Folder.TrainerStateDirectory(last);
            var start = TrainingRun.Prepare(metrics, state, runId, run.Select(Folder.CheckpointDirectory));
            var (report, size) = start == TrainingRun.Start.Completed ? (null, TrainingRun.SizeIn(metrics))
                : TrainRun(run, last, start, state, tokenizer, Source, heldOut, progress, cancellationToken);
            var history = TrainingHistory.Read(metrics);
            foreach (var variant in run)
            {
                ModelCheckpoint.CopyTokenizer(tokenizerFile, Folder.CheckpointDirectory(variant));
                TrainingRun.MarkCheckpoint(Folder.CheckpointDirectory(variant), runId);
                trained.Add(VariantOf(variant, report, history));
            }
            TrainingRun.Complete(metrics, state, runId, size);
            var steps = TrainingRun.FinalSteps(history);
            runs.Add(new TrainedRun(last.Name, recipe, Folder.Relative(metrics), steps.Count == 0 ? 0 : steps[^1].Position.GlobalStep,
                steps.Count(x => x.Skipped), report?.TokensPerSecond ?? TrainingRun.TokensPerSecond(steps))
            {
                Lora = lora,
                TrainableParameters = size.Trainable,
                Parameters = size.All,
                // A resumed run's report covers only what it trained now; the steps on disk cover the whole run.
                PeakResidentBytes = Math.Max(report?.PeakResidentBytes ?? 0, steps.Count == 0 ? 0 : steps.Max(x => x.PeakResidentBytes)),
            });
            Backends.Plots?.Training(history, metrics);
        }

        // Rows in the options' order, whatever order the runs trained in.
        var ordered = Options.Variants.Select(v => trained.Single(t => t.Name == v.Name)).ToList();
        var summary = new TrainingSummary(training.Loss, batches, ordered, runs) { RunId = runId };
        await TrainingSummary.WriteAsync(Folder.TrainingSummary, summary, cancellationToken).ConfigureAwait(false);
        return summary;
    }

    /// <summary>One recipe's run from its start or its last checkpoint; the trainer saves the stage snapshots.</summary>
    private (TrainingReport Report, TrainingRun.ModelSize Size) TrainRun(IGrouping<string, ExperimentVariant> run, ExperimentVariant last, TrainingRun.Start start, string state,
        Tokenizer tokenizer, Func<SampleKind, PreferenceBatcher> source, PreferenceBatcher heldOut, IProgress<ExperimentProgress>? progress,
        CancellationToken cancellationToken)
    {
        var training = Options.Training;
        var recipe = run.First().Recipe;
        using var model = Options.Model.InitFrom is { } checkpoint
            ? CausalLanguageModel.FromHuggingFace(checkpoint)
            : new CausalLanguageModel(TinyConfig(tokenizer), seed: Options.Seed);
        bool needsSelfCritic = recipe != AlignmentRecipe.Imitation;
        bool needsRealignment = recipe is AlignmentRecipe.ImitationSelfCriticRealignment or AlignmentRecipe.SftOnly;
        // Stages after the first fine-tune what the first learned, at a lower peak rate (the same for every recipe).
        var stages = AlignmentStages.For(recipe, source(SampleKind.Imitation), needsSelfCritic ? source(SampleKind.SelfCritic) : null,
                needsRealignment ? source(SampleKind.Realignment) : null, heldOut, training.Epochs)
            .Select((s, i) => i == 0 ? s : s with { LearningRate = training.LearningRate * training.LaterStageLearningRateScale })
            .ToList();
        int totalSteps = stages.Sum(s => (s.Train.Count ?? 0) * s.Epochs);
        using var trainer = new StableAlignmentTrainer(model, new TrainerOptions
        {
            LearningRate = training.LearningRate,
            Loss = training.Loss,
            ValidateEverySteps = Math.Max(10, totalSteps / training.ValidationPoints),
            MetricsDirectory = Folder.MetricsDirectory(last),
            StageSnapshots = run.ToDictionary(v => v.Stage, Folder.CheckpointDirectory, StringComparer.Ordinal),
            CheckpointDirectory = state,
            CheckpointEverySteps = Math.Max(1, totalSteps / 10),
            Lora = run.First().Lora,
            LoraSeed = Options.Seed,
        });
        if (start == TrainingRun.Start.Resume) trainer.LoadCheckpoint(state);
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
        return (report, new TrainingRun.ModelSize(model.TrainableParameterCount, model.ParameterCount));
    }

    /// <summary>
    /// A variant's row: from this call's report when its stage trained now, else from the metrics the run logged
    /// before it was interrupted (the last record of the stage wins, since a resumption repeats the steps after the
    /// last checkpoint).
    /// </summary>
    private TrainedVariant VariantOf(ExperimentVariant variant, TrainingReport? report, TrainingHistory history)
    {
        string checkpoint = Folder.Relative(Folder.CheckpointDirectory(variant));
        if (report?.Stages.FirstOrDefault(s => s.Name == variant.Stage) is { } stage)
            return new TrainedVariant(variant.Name, checkpoint, stage.GlobalSteps, stage.ElapsedSeconds, stage.FinalValidation?.RankingAccuracy);
        var lastStep = history.Steps.LastOrDefault(s => s.StageName == variant.Stage);
        var lastValidation = history.Validations.LastOrDefault(v => v.StageName == variant.Stage);
        return new TrainedVariant(variant.Name, checkpoint, lastStep?.Position.GlobalStep ?? 0, lastStep?.ElapsedSeconds ?? 0, lastValidation?.RankingAccuracy);
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
