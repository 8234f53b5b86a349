using System.Diagnostics;
using System.Text.Json;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// Trains a <see cref="CausalLanguageModel"/> through a list of <see cref="TrainingStage"/>s (the paper's imitation,
/// self-critic and realignment stages, or any ablation) with AdamW, a per-stage cosine schedule with warmup, gradient
/// accumulation and clipping, a non-finite guard, periodic validation, metrics files and resumable checkpoints.
/// </summary>
/// <remarks>
/// A checkpoint holds the model, the optimizer's moments and the position (stage, epoch, batch, steps); the learning
/// rate is a pure function of the stage step, so that is the whole scheduler state. Resuming from a checkpoint reaches
/// the same weights as an uninterrupted run, given batch sources that replay each epoch identically.
/// </remarks>
public sealed class StableAlignmentTrainer : IDisposable
{
    private const string OptimizerFileName = "optimizer.bin";
    private const string StateFileName = "trainer-state.json";

    private readonly CausalLanguageModel _model;
    private readonly OptimizerHelper _optimizer;
    private readonly Parameter[] _parameters;
    private int _consecutiveNonFinite;

    /// <summary>Creates a trainer for <paramref name="model"/>.</summary>
    /// <param name="model">The model to train, on the device training should use. With <see cref="TrainerOptions.Lora"/>
    /// set, LoRA adapters are added to it here (unless it already has the same ones).</param>
    /// <param name="options">Optimisation settings; null for the defaults.</param>
    public StableAlignmentTrainer(CausalLanguageModel model, TrainerOptions? options = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        Options = (options ?? new TrainerOptions()).Validate();
        if (Options.ReturnFreedMemory) GlibcAllocator.MapLargeAllocations();
        if (Options.Lora is { } lora)
        {
            if (model.Lora is null) model.AddLoraAdapters(lora, Options.LoraSeed);
            else if (!model.Lora.SameAdapter(lora))
                throw new ArgumentException($"The model already has LoRA adapters of another shape (r {model.Lora.Rank}) than TrainerOptions.Lora (r {lora.Rank}).", nameof(options));
        }
        // Frozen parameters (a LoRA model's base) get no optimiser state.
        _parameters = model.parameters().Where(p => p.requires_grad).ToArray();
        if (_parameters.Length == 0) throw new ArgumentException("The model has no trainable parameters.", nameof(model));
        _optimizer = new AdamW(_parameters, Options.LearningRate, Options.Beta1, Options.Beta2, Options.Epsilon, Options.WeightDecay);
        Device = _parameters[0].device;
        if (Options.LossFactory is null && Options.LossBackend == PreferenceLossBackend.Cuda && Device.type != DeviceType.CUDA)
            throw new ArgumentException("LossBackend Cuda needs the model on a CUDA device; use Auto or Reference on the CPU.", nameof(options));
        var fusable = Options.FusedOutputLoss && model.OutputWeight is not null;
        ContrastiveLoss = CreateLoss(Options.Loss with { SftOnly = false }, fusable);
        SftLoss = CreateLoss(Options.Loss with { SftOnly = true }, fusable);
        FusedOutputLoss = fusable && ContrastiveLoss is ContrastivePreferenceLoss && SftLoss is ContrastivePreferenceLoss;
    }

    /// <summary>The validated options.</summary>
    public TrainerOptions Options { get; }

    /// <summary>Where the run is; advanced by <see cref="Train"/>, restored by <see cref="LoadCheckpoint"/>.</summary>
    public TrainingPosition Position { get; private set; } = TrainingPosition.Start;

    private Device Device { get; }

    internal IPreferenceLoss ContrastiveLoss { get; }

    internal IPreferenceLoss SftLoss { get; }

    /// <summary>Whether batches go through <see cref="ContrastivePreferenceLoss.ComputeFromHidden"/> (see <see cref="TrainerOptions.FusedOutputLoss"/>).</summary>
    internal bool FusedOutputLoss { get; }

    private IPreferenceLoss LossFor(TrainingObjective objective) => objective switch
    {
        TrainingObjective.Sft => SftLoss,
        TrainingObjective.Dpo => _dpoLoss ??= new DpoLoss(Options.Dpo, Options.Loss with { SftOnly = false }),
        TrainingObjective.Rrhf => _rrhfLoss ??= new RrhfLoss(Options.Rrhf, Options.Loss with { SftOnly = false }),
        _ => ContrastiveLoss,
    };

    private DpoLoss? _dpoLoss;
    private RrhfLoss? _rrhfLoss;

    private IPreferenceLoss CreateLoss(ContrastivePreferenceOptions options, bool fusable)
    {
        if (Options.LossFactory is { } factory) return factory(options);
        // The CUDA kernels serve a model on a CUDA device; Auto falls back to the reference anywhere else.
        var onCuda = Device.type == DeviceType.CUDA;
        if (Options.LossBackend == PreferenceLossBackend.Cuda || (Options.LossBackend == PreferenceLossBackend.Auto && onCuda))
        {
            var available = CudaContrastivePreferenceLoss.IsAvailable(out var reason);
            if (!available && Options.LossBackend == PreferenceLossBackend.Cuda)
                throw new NotSupportedException($"LossBackend Cuda was requested but the CUDA loss is unavailable: {reason}");
            // Fused, the kernels do the per-chunk work inside ContrastivePreferenceLoss.ComputeFromHidden.
            if (available && !fusable) return new CudaContrastivePreferenceLoss(options);
        }
        // The trainer's logits are read by nothing after the loss, so their storage can take the gradient.
        return new ContrastivePreferenceLoss(options) { OverwriteLogitsWithGradient = true };
    }

    /// <summary>
    /// Runs the stages from <see cref="Position"/> to the end. Batches are moved to the model's device and disposed
    /// after use. On cancellation a checkpoint is written (when a directory is configured) before
    /// <see cref="OperationCanceledException"/> is thrown, so the run can resume from there.
    /// </summary>
    /// <param name="stages">The stages, in order (see <see cref="AlignmentStages"/>).</param>
    /// <param name="progress">Receives an event per step, validation and stage end; called synchronously on the training thread.</param>
    /// <param name="cancellationToken">Checked after every optimizer step.</param>
    /// <returns>The run's summary.</returns>
    /// <exception cref="TrainingDivergedException">Too many consecutive steps had a non-finite loss or gradient.</exception>
    public TrainingReport Train(IReadOnlyList<TrainingStage> stages, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stages);
        if (stages.Count == 0) throw new ArgumentException("At least one stage is needed.", nameof(stages));
        foreach (var stage in stages) (stage ?? throw new ArgumentException("A stage is null.", nameof(stages))).Validate();
        if (Position.Stage > stages.Count)
            throw new ArgumentException($"The trainer is positioned at stage {Position.Stage}, but only {stages.Count} stages were given.", nameof(stages));

        using var log = Options.MetricsDirectory is null ? null : new TrainingMetricsLog(Options.MetricsDirectory);
        var run = new RunRecorder(log, progress, Stopwatch.StartNew());
        var stageReports = new List<StageReport>();
        var checkpointing = _model.ActivationCheckpointing;
        _model.ActivationCheckpointing = Options.ActivationCheckpointing;
        try
        {
            for (var s = Position.Stage; s < stages.Count; s++)
                stageReports.Add(TrainStage(stages[s], s, run, cancellationToken));
        }
        finally
        {
            _model.ActivationCheckpointing = checkpointing;
        }

        var seconds = run.Clock.Elapsed.TotalSeconds;
        return new TrainingReport(stageReports, Position.GlobalStep, run.Steps.Count(x => x.Skipped),
            seconds > 0 ? run.Steps.Sum(x => x.Tokens) / seconds : 0, run.Steps, run.Validations,
            stageReports.Count == 0 ? 0 : stageReports.Max(r => r.PeakResidentBytes));
    }

    private StageReport TrainStage(TrainingStage stage, int stageIndex, RunRecorder run, CancellationToken cancellationToken)
    {
        var batchesPerEpoch = stage.Train.Count ?? CountBatches(stage.Train);
        if (batchesPerEpoch <= 0) throw new ArgumentException($"Stage '{stage.Name}' has no training batches.", nameof(stage));
        var accumulation = Options.GradientAccumulationSteps;
        var stepsPerEpoch = (batchesPerEpoch + accumulation - 1) / accumulation;
        var totalSteps = stepsPerEpoch * stage.Epochs;
        var loss = LossFor(stage.Objective);
        var reference = stage.Reference;
        var stepsBefore = run.Steps.Count;
        using var peak = ResidentMemory.StartWindow(); // the stage's peak starts here
        if (Position.Stage != stageIndex) Position = new TrainingPosition(stageIndex, 0, 0, 0, Position.GlobalStep);

        _model.train();
        for (var epoch = Position.Epoch; epoch < stage.Epochs; epoch++)
        {
            var window = new StepWindow();
            var batchIndex = 0;
            foreach (var batch in stage.Train.Batches(epoch))
            {
                using (batch)
                {
                    // Resuming: batches before the saved position were already trained on.
                    if (batchIndex++ < Position.NextBatch) continue;
                    // The last window of an epoch may be short; scale its losses by its true size.
                    var windowSize = Math.Min(accumulation, batchesPerEpoch - (batchIndex - 1 - window.Batches));
                    AccumulateBatch(batch, loss, reference, window, Math.Max(1, windowSize));
                }

                if (window.Batches == accumulation || batchIndex == batchesPerEpoch)
                {
                    FinishStep(stage, window, new TrainingPosition(stageIndex, epoch, batchIndex, Position.StageStep + 1, Position.GlobalStep + 1), totalSteps, peak, run);
                    window = new StepWindow();
                    AfterStep(stage, totalSteps, run, cancellationToken);
                }
            }

            if (window.Batches > 0)
            {
                // The source yielded more batches than its Count promised; close the window anyway.
                FinishStep(stage, window, new TrainingPosition(stageIndex, epoch, batchIndex, Position.StageStep + 1, Position.GlobalStep + 1), totalSteps, peak, run);
                AfterStep(stage, totalSteps, run, cancellationToken);
            }
            Position = Position with { Epoch = epoch + 1, NextBatch = 0 };
        }

        var final = stage.Validation is null ? null : ValidateAndRecord(stage, run);
        Position = new TrainingPosition(stageIndex + 1, 0, 0, 0, Position.GlobalStep);
        // The snapshot is written before the resumable checkpoint moves past this stage, so a resumed run never lacks it.
        if (Options.StageSnapshots?.TryGetValue(stage.Name, out var snapshot) == true) _model.SaveCheckpoint(snapshot);
        if (Options.CheckpointDirectory is not null) SaveCheckpoint(Options.CheckpointDirectory);
        var stageSteps = run.Steps.Skip(stepsBefore).ToList();
        var report = new StageReport(stage.Name, stage.Objective, stageSteps.Count, stageSteps.Count(x => x.Skipped), final)
        {
            GlobalSteps = Position.GlobalStep,
            ElapsedSeconds = run.Clock.Elapsed.TotalSeconds,
            PeakResidentBytes = peak.Bytes,
        };
        run.Progress?.Report(new TrainingProgress(TrainingEventKind.StageCompleted, stage.Name, totalSteps, null, final));
        return report;
    }

    private void AfterStep(TrainingStage stage, int totalSteps, RunRecorder run, CancellationToken cancellationToken)
    {
        if (stage.Validation is not null && Options.ValidateEverySteps > 0 && Position.StageStep % Options.ValidateEverySteps == 0 && Position.StageStep < totalSteps)
            ValidateAndRecord(stage, run);
        if (Options.CheckpointDirectory is not null && Options.CheckpointEverySteps > 0 && Position.GlobalStep % Options.CheckpointEverySteps == 0)
            SaveCheckpoint(Options.CheckpointDirectory);
        if (cancellationToken.IsCancellationRequested)
        {
            if (Options.CheckpointDirectory is not null) SaveCheckpoint(Options.CheckpointDirectory);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>Forward and backward of one batch; gradients add up in the parameters until the window closes.</summary>
    private void AccumulateBatch(PreferenceBatch batch, IPreferenceLoss loss, ReferenceModel? reference, StepWindow window, int windowSize)
    {
        using var scope = NewDisposeScope();
        using var result = Evaluate(batch, loss, reference);
        var value = result.Loss.item<float>();
        window.Batches++;
        window.Tokens += batch.InputIds.numel() - batch.PaddingTokens;
        if (!float.IsFinite(value))
        {
            // No backward: a NaN gradient would poison the whole window; the step is skipped instead.
            window.NonFinite = true;
            return;
        }
        // The forward pass's activations are freed by now; their fragments of the heap need not stay resident.
        GlibcAllocator.ReleaseFreePages(Options.HeapTrimThresholdBytes);
        using (var size = windowSize.ToScalar()) result.Loss.div(size).backward();
        window.LossSum += value;
        window.SftSum += result.SftTerms.sum().item<float>();
        window.RankingSum += result.RankingTerms.sum().item<float>();
        window.Groups += result.SftTerms.shape[0];
        window.Rankable += result.RankableGroups;
        window.Correct += result.CorrectGroups;
    }

    /// <summary>
    /// The model's forward pass on one batch (moved to the model's device) and the loss: fused with the output layer
    /// when <see cref="FusedOutputLoss"/> and the objective is the contrastive one, else on the materialised logits
    /// (DPO and RRHF, which also need the reference model's NLLs).
    /// </summary>
    private PreferenceLossResult Evaluate(PreferenceBatch batch, IPreferenceLoss loss, ReferenceModel? reference)
    {
        if (FusedOutputLoss && loss is ContrastivePreferenceLoss contrastive && _model.OutputWeight is { } weight)
        {
            return contrastive.ComputeFromHidden(_model.HiddenStates(batch.InputIds.to(Device)), weight,
                batch.Targets.to(Device), batch.Groups.to(Device), batch.Ratings.to(Device), batch.LossMask.to(Device));
        }
        return HeldOutRanking.Compute(loss, _model.forward(batch.InputIds.to(Device)), batch, reference, Device);
    }

    private void FinishStep(TrainingStage stage, StepWindow window, TrainingPosition next, int totalSteps, ResidentMemory.PeakWindow peak, RunRecorder run)
    {
        var lr = LearningRate(next.StageStep - 1, totalSteps, stage.LearningRate ?? Options.LearningRate);
        double norm = double.NaN;
        if (!window.NonFinite)
        {
            // clip_grad_norm_ returns the norm before clipping; a huge max norm only measures it.
            norm = nn.utils.clip_grad_norm_(_parameters, Options.MaxGradientNorm > 0 ? Options.MaxGradientNorm : double.MaxValue);
        }

        var skipped = window.NonFinite || !double.IsFinite(norm);
        if (skipped)
        {
            _consecutiveNonFinite++;
        }
        else
        {
            _consecutiveNonFinite = 0;
            foreach (var group in _optimizer.ParamGroups) group.LearningRate = lr;
            _optimizer.step();
        }
        _optimizer.zero_grad();
        GlibcAllocator.ReleaseFreePages(Options.HeapTrimThresholdBytes);
        Position = next;

        var n = Math.Max(1, window.Batches);
        var metrics = new TrainingStepMetrics(stage.Name, next,
            window.NonFinite ? double.NaN : window.LossSum / n,
            window.Groups == 0 ? double.NaN : window.SftSum / window.Groups,
            window.Groups == 0 ? double.NaN : window.RankingSum / window.Groups,
            window.Rankable == 0 ? double.NaN : (double)window.Correct / window.Rankable,
            lr, norm, skipped, window.Tokens, run.Clock.Elapsed.TotalSeconds, peak.Bytes);
        run.Add(metrics, totalSteps);

        if (_consecutiveNonFinite >= Options.MaxConsecutiveNonFiniteSteps)
            throw new TrainingDivergedException(
                $"Stage '{stage.Name}': {_consecutiveNonFinite} consecutive steps had a non-finite loss or gradient (last at global step {next.GlobalStep}); " +
                "lower the learning rate or check the data.");
    }

    /// <summary>Linear warmup to the peak, then cosine decay to <see cref="TrainerOptions.MinLearningRateRatio"/> of it.</summary>
    /// <param name="step">0-based optimizer step within the stage.</param>
    /// <param name="totalSteps">Optimizer steps in the stage.</param>
    /// <param name="peak">The stage's peak learning rate.</param>
    internal double LearningRate(int step, int totalSteps, double peak)
    {
        var warmup = (int)Math.Ceiling(Options.WarmupRatio * totalSteps);
        if (step < warmup) return peak * (step + 1) / warmup;
        var decaySteps = Math.Max(1, totalSteps - warmup);
        var progress = Math.Min(1.0, (double)(step - warmup) / decaySteps);
        var floor = peak * Options.MinLearningRateRatio;
        return floor + (peak - floor) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }

    private ValidationMetrics ValidateAndRecord(TrainingStage stage, RunRecorder run)
    {
        var metrics = Validate(stage.Validation!, stage.Objective, stage.Name, stage.Reference);
        run.Add(metrics, stage);
        return metrics;
    }

    /// <summary>
    /// Evaluates held-out batches without training: ranking accuracy, mean NLL of the best responses, mean ranking
    /// term and mean loss under <paramref name="objective"/>, each averaged over groups.
    /// </summary>
    /// <param name="source">The held-out batches (epoch 0 is used).</param>
    /// <param name="objective">The objective whose loss is reported.</param>
    /// <param name="stageName">A label for the result.</param>
    /// <param name="reference">The reference model; required for <see cref="TrainingObjective.Dpo"/>.</param>
    /// <returns>The figures.</returns>
    public ValidationMetrics Validate(IPreferenceBatchSource source, TrainingObjective objective = TrainingObjective.Contrastive, string stageName = "validation",
        ReferenceModel? reference = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (objective == TrainingObjective.Dpo && reference is null)
            throw new ArgumentException("Validating the Dpo objective needs the reference model.", nameof(reference));
        double sft = 0, ranking = 0, lossSum = 0;
        int groups = 0, rankable = 0, correct = 0;
        HeldOutRanking.Score(_model, source, LossFor(objective), reference, (_, result) =>
        {
            var g = (int)result.SftTerms.shape[0];
            sft += result.SftTerms.sum().item<float>();
            ranking += result.RankingTerms.sum().item<float>();
            lossSum += result.Loss.item<float>() * g;
            groups += g;
            rankable += result.RankableGroups;
            correct += result.CorrectGroups;
        }, CancellationToken.None);

        if (groups == 0) throw new ArgumentException("The validation source yielded no groups.", nameof(source));
        return new ValidationMetrics(stageName, Position.GlobalStep, rankable == 0 ? double.NaN : (double)correct / rankable,
            sft / groups, ranking / groups, lossSum / groups, groups);
    }

    private static int CountBatches(IPreferenceBatchSource source)
    {
        var count = 0;
        foreach (var batch in source.Batches(0))
        {
            batch.Dispose();
            count++;
        }
        return count;
    }

    /// <summary>
    /// Writes the model (TorchSharp format), the optimizer state and the position to <paramref name="directory"/>.
    /// The files are written to a sibling folder first and swapped in, so a crash never leaves a half-written checkpoint.
    /// A LoRA model writes only its adapter (PEFT layout): the frozen base is the caller's to rebuild on resume.
    /// </summary>
    /// <param name="directory">The checkpoint directory.</param>
    public void SaveCheckpoint(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var full = Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar);
        var staging = full + ".tmp";
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        if (_model.Lora is null) _model.SaveCheckpoint(staging);
        else _model.SaveLoraAdapter(staging);
        _optimizer.save_state_dict(Path.Combine(staging, OptimizerFileName));
        File.WriteAllText(Path.Combine(staging, StateFileName), JsonSerializer.Serialize(new CheckpointState(Position, _consecutiveNonFinite)));
        if (Directory.Exists(full)) Directory.Delete(full, recursive: true);
        Directory.Move(staging, full);
    }

    /// <summary>
    /// Restores the model weights, the optimizer state and the position from a checkpoint written by
    /// <see cref="SaveCheckpoint"/>; the next <see cref="Train"/> call continues from there with the same stages.
    /// For a LoRA model only the adapter weights are restored, onto the base the trainer was created with.
    /// </summary>
    /// <param name="directory">The checkpoint directory.</param>
    public void LoadCheckpoint(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var statePath = Path.Combine(directory, StateFileName);
        if (!File.Exists(statePath)) throw new FileNotFoundException($"'{directory}' is not a trainer checkpoint: no {StateFileName}.", statePath);
        var state = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(statePath))
                    ?? throw new InvalidDataException($"'{statePath}' is empty.");
        if (_model.Lora is not null)
        {
            _model.LoadLoraAdapter(directory);
        }
        else
        {
            using var saved = CausalLanguageModel.LoadCheckpoint(directory);
            if (saved.Config != _model.Config)
                throw new InvalidDataException($"Checkpoint '{directory}' holds a model of another shape than the one being trained.");
            using var noGrad = no_grad();
            var target = _model.state_dict();
            foreach (var (name, tensor) in saved.state_dict()) target[name].copy_(tensor);
        }
        _optimizer.load_state_dict(Path.Combine(directory, OptimizerFileName));
        Position = state.Position;
        _consecutiveNonFinite = state.ConsecutiveNonFinite;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _optimizer.Dispose();
        (ContrastiveLoss as IDisposable)?.Dispose();
        (SftLoss as IDisposable)?.Dispose();
    }

    private sealed record CheckpointState(TrainingPosition Position, int ConsecutiveNonFinite);

    /// <summary>Sums over the batches of one optimizer step.</summary>
    private sealed class StepWindow
    {
        public int Batches;
        public bool NonFinite;
        public double LossSum, SftSum, RankingSum;
        public long Groups, Tokens;
        public int Rankable, Correct;
    }

    /// <summary>Collects the run's metrics and forwards them to the log and the progress sink.</summary>
    private sealed class RunRecorder(TrainingMetricsLog? log, IProgress<TrainingProgress>? progress, Stopwatch clock)
    {
        public List<TrainingStepMetrics> Steps { get; } = [];
        public List<ValidationMetrics> Validations { get; } = [];
        public IProgress<TrainingProgress>? Progress => progress;
        public Stopwatch Clock => clock;

        public void Add(TrainingStepMetrics step, int stageSteps)
        {
            Steps.Add(step);
            log?.Add(step);
            progress?.Report(new TrainingProgress(TrainingEventKind.Step, step.StageName, stageSteps, step, null));
        }

        public void Add(ValidationMetrics validation, TrainingStage stage)
        {
            Validations.Add(validation);
            log?.Add(validation);
            progress?.Report(new TrainingProgress(TrainingEventKind.Validation, stage.Name, 0, null, validation));
        }
    }
}
