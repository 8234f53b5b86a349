using System.Globalization;
using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Experiment;

public sealed partial class StableAlignmentExperiment
{
    /// <summary>
    /// Step 3: for every training seed, trains one run per recipe among the variants, all from the same initial
    /// weights: the baselines (SFT; DPO and RRHF after an SFT phase) on the union of the data, and Stable Alignment's
    /// imitation, self-critic and realignment stages, every run for the full run's number of optimizer steps. The
    /// trainer saves each variant as a snapshot when its stage completes. Writes each seed's
    /// <see cref="RunFolder.TrainingSummary"/> with everything evaluation needs: the variants, the loss options, the
    /// batch recipe and the seed's training run id, which every checkpoint of that seed records too. The trainer
    /// checkpoints as it goes, so an interrupted train run again with the same inputs resumes from its last
    /// checkpoint, and a finished run (of any seed) is not trained again.
    /// </summary>
    /// <param name="progress">Receives one report per optimizer step.</param>
    /// <param name="cancellationToken">Stops between optimizer steps.</param>
    /// <returns>What was trained with the first seed (the others are in their seed folders).</returns>
    /// <exception cref="ExperimentException">The dataset is missing, or lacks a kind of sample a recipe needs.</exception>
    public async Task<TrainingSummary> TrainAsync(IProgress<ExperimentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var step = EnterStep();
        string tokenizerFile = Options.Model.InitFrom is { } init
            ? RunFolder.RequireGiven(Path.Combine(init, ModelCheckpoint.HuggingFaceTokenizerFileName), "the tokenizer of the Hugging Face checkpoint to start from")
            : RunFolder.Require(Folder.VocabularyFile, "build-dataset");
        Tokenizer tokenizer = ModelCheckpoint.LoadTokenizer(tokenizerFile);
        var train = await AlignmentDataset.LoadAsync(RunFolder.Require(Folder.TrainFile, "build-dataset"), cancellationToken: cancellationToken).ConfigureAwait(false);
        var validation = await AlignmentDataset.LoadAsync(RunFolder.Require(Folder.ValidationFile, "build-dataset"), cancellationToken: cancellationToken).ConfigureAwait(false);

        TrainingSummary? first = null;
        foreach (var (index, seed, folder) in TrainingSeeds())
        {
            var summary = await TrainSeedAsync(train, validation, tokenizer, tokenizerFile, seed, folder, progress, cancellationToken).ConfigureAwait(false);
            first ??= summary;
        }
        return first!;
    }

    private async Task<TrainingSummary> TrainSeedAsync(AlignmentDataset train, AlignmentDataset validation, Tokenizer tokenizer, string tokenizerFile, int seed,
        RunFolder folder, IProgress<ExperimentProgress>? progress, CancellationToken cancellationToken)
    {
        var training = Options.Training;
        // Tokenized once for every run of this seed: the batchers replay each epoch identically, whoever consumes them.
        var batches = AlignmentBatchRecipe.Paper(Options.Model.MaxLength, training.GroupsPerBatch, seed, training.AppendEndOfText);
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
        PreferenceBatcher? union = null;
        // Every run gets the optimizer steps of the full IL+SC+RA run, whichever variants are compared.
        int budget = AlignmentStages.StepsOf(PaperStages(AlignmentRecipe.ImitationSelfCriticRealignment, Source, heldOut));

        // One id per seed: the seed decides the weights, so each seed's run resumes or is refused on its own.
        string runId = TrainingRun.IdOf(Options, seed, [tokenizerFile, Folder.TrainFile, Folder.ValidationFile]);
        var trained = new List<TrainedVariant>();
        var runs = new List<TrainedRun>();
        foreach (var run in Runs())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var recipe = run.First().Recipe;
            var lora = run.First().Lora;
            var names = AlignmentStages.NamesOf(recipe).ToList();
            var last = run.OrderBy(v => v.IsStart ? -1 : names.IndexOf(v.Stage)).Last();
            string metrics = folder.MetricsDirectory(last);
            string state = folder.TrainerStateDirectory(last);
            var start = TrainingRun.Prepare(metrics, state, runId, run.Select(folder.CheckpointDirectory));
            var (report, size) = start == TrainingRun.Start.Completed ? (null, TrainingRun.SizeIn(metrics))
                : TrainRun(run, last, start, state, folder, seed, budget, tokenizer, tokenizerFile, Source,
                    () => union ??= train.CreateBatcher(tokenizer, batches.Union, cancellationToken: cancellationToken), heldOut, progress, cancellationToken);
            var history = TrainingHistory.Read(metrics);
            foreach (var variant in run)
            {
                ModelCheckpoint.CopyTokenizer(tokenizerFile, folder.CheckpointDirectory(variant));
                TrainingRun.MarkCheckpoint(folder.CheckpointDirectory(variant), runId);
                trained.Add(VariantOf(variant, folder, report, history) with { Seed = seed });
            }
            TrainingRun.Complete(metrics, state, runId, size);
            if (last.IsStart) continue;
            var steps = TrainingRun.FinalSteps(history);
            runs.Add(new TrainedRun(last.Name, recipe, folder.Relative(metrics), steps.Count == 0 ? 0 : steps[^1].Position.GlobalStep,
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
        var summary = new TrainingSummary(training.Loss, batches, ordered, runs) { RunId = runId, Seed = seed, StepBudget = budget };
        Directory.CreateDirectory(folder.Root);
        await TrainingSummary.WriteAsync(folder.TrainingSummary, summary, cancellationToken).ConfigureAwait(false);
        return summary;
    }

    /// <summary>
    /// One recipe's run of one seed from its start or its last checkpoint: saves the starting model for a start
    /// variant, then trains (unless the run is only the start); the trainer saves the stage snapshots.
    /// </summary>
    private (TrainingReport? Report, TrainingRun.ModelSize Size) TrainRun(IGrouping<string, ExperimentVariant> run, ExperimentVariant last, TrainingRun.Start start,
        string state, RunFolder folder, int seed, int budget, Tokenizer tokenizer, string tokenizerFile, Func<SampleKind, PreferenceBatcher> source,
        Func<PreferenceBatcher> union, PreferenceBatcher heldOut, IProgress<ExperimentProgress>? progress, CancellationToken cancellationToken)
    {
        var training = Options.Training;
        var recipe = run.First().Recipe;
        using var model = Options.Model.InitFrom is { } checkpoint
            ? CausalLanguageModel.FromHuggingFace(checkpoint)
            : new CausalLanguageModel(TinyConfig(tokenizer), seed: seed);
        // The same seed makes the same initial weights, so a resumed run saves the same starting model again.
        foreach (var startVariant in run.Where(v => v.IsStart))
        {
            model.SaveCheckpoint(folder.CheckpointDirectory(startVariant));
            ModelCheckpoint.CopyTokenizer(tokenizerFile, folder.CheckpointDirectory(startVariant));
        }
        var size = new TrainingRun.ModelSize(model.TrainableParameterCount, model.ParameterCount);
        if (last.IsStart) return (null, size);

        var snapshots = run.Where(v => !v.IsStart).ToDictionary(v => v.Stage, folder.CheckpointDirectory, StringComparer.Ordinal);
        int sftSteps = Math.Min(budget - 1, (int)Math.Round(budget * training.BaselineSftShare));
        if (recipe == AlignmentRecipe.Dpo)
        {
            // DPO's frozen reference is the model after the SFT phase (loaded when first needed, so a resumed run
            // finds the snapshot its first phase saved), or the starting model when there is none.
            if (sftSteps == 0) model.SaveCheckpoint(folder.ReferenceDirectory(last));
            else snapshots.TryAdd(AlignmentStages.Sft, folder.ReferenceDirectory(last));
        }
        using var reference = recipe == AlignmentRecipe.Dpo
            ? ReferenceModel.FromCheckpoint(sftSteps == 0 ? folder.ReferenceDirectory(last) : snapshots[AlignmentStages.Sft])
            : null;
        var stages = (AlignmentStages.IsBaseline(recipe)
                ? AlignmentStages.Baseline(recipe, union(), budget, sftSteps, reference, heldOut)
                : PaperStages(recipe, source, heldOut))
            // Stages after the first fine-tune what the first learned, at a lower peak rate (the same for every recipe).
            .Select((s, i) => i == 0 ? s : s with { LearningRate = training.LearningRate * training.LaterStageLearningRateScale })
            .ToList();
        int totalSteps = AlignmentStages.StepsOf(stages);
        using var trainer = new StableAlignmentTrainer(model, new TrainerOptions
        {
            LearningRate = training.LearningRate,
            Loss = training.Loss,
            Dpo = training.Dpo,
            Rrhf = training.Rrhf,
            ValidateEverySteps = Math.Max(10, totalSteps / training.ValidationPoints),
            MetricsDirectory = folder.MetricsDirectory(last),
            StageSnapshots = snapshots,
            CheckpointDirectory = state,
            CheckpointEverySteps = Math.Max(1, totalSteps / 10),
            Lora = run.First().Lora,
            LoraSeed = seed,
        });
        if (start == TrainingRun.Start.Resume) trainer.LoadCheckpoint(state);
        string activity = Options.Seeds == 1 ? $"train {last.Name}" : string.Create(CultureInfo.InvariantCulture, $"train {last.Name} (seed {seed})");
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
    /// last checkpoint). A start variant trained for no steps.
    /// </summary>
    private static TrainedVariant VariantOf(ExperimentVariant variant, RunFolder folder, TrainingReport? report, TrainingHistory history)
    {
        string checkpoint = folder.Relative(folder.CheckpointDirectory(variant));
        if (variant.IsStart) return new TrainedVariant(variant.Name, checkpoint, 0, 0, null);
        if (report?.Stages.FirstOrDefault(s => s.Name == variant.Stage) is { } stage)
            return new TrainedVariant(variant.Name, checkpoint, stage.GlobalSteps, stage.ElapsedSeconds, stage.FinalValidation?.RankingAccuracy);
        var lastStep = history.Steps.LastOrDefault(s => s.StageName == variant.Stage);
        var lastValidation = history.Validations.LastOrDefault(v => v.StageName == variant.Stage);
        return new TrainedVariant(variant.Name, checkpoint, lastStep?.Position.GlobalStep ?? 0, lastStep?.ElapsedSeconds ?? 0, lastValidation?.RankingAccuracy);
    }

    /// <summary>The stages of one of the paper's recipes over the experiment's batchers, validated on the held-out queries.</summary>
    private IReadOnlyList<TrainingStage> PaperStages(AlignmentRecipe recipe, Func<SampleKind, PreferenceBatcher> source, PreferenceBatcher heldOut) =>
        AlignmentStages.For(recipe, source(SampleKind.Imitation),
            recipe == AlignmentRecipe.Imitation ? null : source(SampleKind.SelfCritic),
            recipe == AlignmentRecipe.ImitationSelfCriticRealignment ? source(SampleKind.Realignment) : null,
            heldOut, Options.Training.Epochs);

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
