using StableAlignment.Core.Models;

namespace StableAlignment.Core.Training;

/// <summary>Which implementation of the contrastive preference loss the trainer uses.</summary>
public enum PreferenceLossBackend
{
    /// <summary>The CUDA kernels when the model is on a CUDA device and they are available, the reference otherwise.</summary>
    Auto,

    /// <summary>The TorchSharp reference (<see cref="ContrastivePreferenceLoss"/>), on any device.</summary>
    Reference,

    /// <summary>The hand-written CUDA kernels; needs a CUDA device.</summary>
    Cuda,
}

/// <summary>
/// Optimisation settings of <see cref="StableAlignmentTrainer"/>. The reference trains LLaMA-7B at lr 2e-5, cosine
/// schedule, 3% warmup, no weight decay, accumulation 8 with one query per step; these defaults keep the schedule and
/// scale the rest to a tiny model whose batches already hold many queries.
/// </summary>
public sealed record TrainerOptions
{
    /// <summary>Peak learning rate of AdamW. Default 1e-3 (tiny models train at far higher rates than 7B ones).</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Share of each stage's optimizer steps spent warming up linearly from 0. Default 0.03.</summary>
    public double WarmupRatio { get; init; } = 0.03;

    /// <summary>Learning rate at the end of the cosine decay, as a fraction of the peak. Default 0.</summary>
    public double MinLearningRateRatio { get; init; }

    /// <summary>AdamW decoupled weight decay. Default 0 (the reference).</summary>
    public double WeightDecay { get; init; }

    /// <summary>AdamW beta1. Default 0.9.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>AdamW beta2. Default 0.999.</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>AdamW epsilon. Default 1e-8.</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Batches whose gradients are summed before one optimizer step. Default 1.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>Global gradient-norm clipping threshold; 0 disables clipping (the norm is still checked). Default 1.</summary>
    public double MaxGradientNorm { get; init; } = 1.0;

    /// <summary>Options of the contrastive objective; SFT stages use the same options in SFT-only mode.</summary>
    public ContrastivePreferenceOptions Loss { get; init; } = new();

    /// <summary>Options of <see cref="TrainingObjective.Dpo"/> stages (beta 0.1 by default); their inputs follow <see cref="Loss"/>.</summary>
    public DpoOptions Dpo { get; init; } = new();

    /// <summary>Options of <see cref="TrainingObjective.Rrhf"/> stages (ranking weight 1 by default); their inputs follow <see cref="Loss"/>.</summary>
    public RrhfOptions Rrhf { get; init; } = new();

    /// <summary>Which loss implementation to use. Default <see cref="PreferenceLossBackend.Auto"/>.</summary>
    public PreferenceLossBackend LossBackend { get; init; } = PreferenceLossBackend.Auto;

    /// <summary>
    /// Fuse the model's output layer into the loss (<see cref="ContrastivePreferenceLoss.ComputeFromHidden"/>) whenever
    /// that layer is a plain linear map (<see cref="Models.CausalLanguageModel.OutputWeight"/>) and the loss is the
    /// library's: the <c>[N, T, V]</c> logits and their gradient are then never materialised, only a bounded chunk
    /// of them. Results equal the unfused path within float32 tolerance. On a GPU the kernels do the per-chunk loss
    /// work. Default <see langword="true"/>; <see langword="false"/> materialises the logits.
    /// </summary>
    public bool FusedOutputLoss { get; init; } = true;

    /// <summary>
    /// Recompute each decoder layer in the backward pass instead of keeping its activations
    /// (<see cref="Models.CausalLanguageModel.ActivationCheckpointing"/>): activation memory drops to one
    /// <c>[B, T, C]</c> tensor per layer for about one more forward pass of compute; gradients are unchanged.
    /// Default <see langword="false"/>.
    /// </summary>
    public bool ActivationCheckpointing { get; init; }

    /// <summary>
    /// Return the memory of freed tensors to the system at once, for runs bound by memory rather than time. On Linux
    /// with glibc the trainer then makes every allocation of 1 MiB or more a mapping of its own, unmapped when freed
    /// (<c>mallopt(M_MMAP_THRESHOLD)</c>), instead of glibc's default of serving such buffers from a heap that
    /// fragments as each layer allocates and frees. A Qwen2.5-0.5B-shaped LoRA step with checkpointing and the fused
    /// loss peaked at 2,891 MiB this way and at 6,084 MiB without (before <see cref="HeapTrimThresholdBytes"/>, which
    /// brings it to about 5,130 MiB), but took about 3.5 times as long on the development VM,
    /// where the first touch of a fresh page is expensive (docs/training.md). The setting is the whole process's and
    /// stays after training; a <c>MALLOC_MMAP_THRESHOLD_</c> in the environment takes precedence. Default
    /// <see langword="false"/>: the allocator keeps and reuses freed memory.
    /// </summary>
    public bool ReturnFreedMemory { get; init; }

    /// <summary>
    /// At the two points of a step where most of its memory has just been freed (before the backward pass and after the
    /// optimizer step), the trainer hands the heap's free pages back to the system (<c>malloc_trim</c>) when its free
    /// chunks (the whole process's) hold more than this many bytes. On Linux with glibc only; 0 never trims. Default
    /// 256 MiB, which training a tiny model alone never frees, so only large models pay for it: a Qwen2.5-0.5B-shaped
    /// LoRA step with checkpointing and the fused loss then peaked at 5,127 MiB instead of 6,402 MiB, at 43.6 s a step instead of 37.9 s on the development VM
    /// (docs/training.md): the cost is the first touch of the returned pages when the heap uses them again.
    /// </summary>
    public long HeapTrimThresholdBytes { get; init; } = 256L << 20;

    /// <summary>
    /// Overrides <see cref="LossBackend"/> for the contrastive and SFT objectives: builds the loss from the
    /// (stage-adjusted) options. DPO and RRHF stages always use <see cref="DpoLoss"/> and <see cref="RrhfLoss"/>.
    /// </summary>
    public Func<ContrastivePreferenceOptions, IPreferenceLoss>? LossFactory { get; init; }

    /// <summary>Validate every this many optimizer steps (and at each stage's end); 0 validates only at stage ends. Default 50.</summary>
    public int ValidateEverySteps { get; init; } = 50;

    /// <summary>Consecutive skipped (non-finite) steps after which the run stops with <see cref="TrainingDivergedException"/>. Default 5.</summary>
    public int MaxConsecutiveNonFiniteSteps { get; init; } = 5;

    /// <summary>Where checkpoints go; null disables checkpointing.</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>Write a checkpoint every this many optimizer steps (and at each stage's end, and on cancellation); 0: only those. Default 0.</summary>
    public int CheckpointEverySteps { get; init; }

    /// <summary>Where metrics (JSON Lines, CSV) go; null keeps them in memory only. <see cref="TrainingHistory.Read"/> reads them back.</summary>
    public string? MetricsDirectory { get; init; }

    /// <summary>
    /// Stage name to a directory: when that stage completes, the model is saved there
    /// (<see cref="Models.CausalLanguageModel.SaveCheckpoint"/>). This is how one run yields the paper's ablation
    /// variants (the model after IL, after IL+SC, after IL+SC+RA). Null takes no snapshots.
    /// </summary>
    public IReadOnlyDictionary<string, string>? StageSnapshots { get; init; }

    /// <summary>
    /// Train LoRA adapters instead of every parameter: the trainer adds them to the model (see
    /// <see cref="CausalLanguageModel.AddLoraAdapters"/>), the optimiser keeps state only for them, and checkpoints hold
    /// only them. Null (the default): full fine-tuning.
    /// </summary>
    public LoraOptions? Lora { get; init; }

    /// <summary>Seed of the adapters' initialisation when <see cref="Lora"/> is set; null uses torch's global generator. Default null.</summary>
    public long? LoraSeed { get; init; }

    /// <summary>Checks every option and throws <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public TrainerOptions Validate()
    {
        static void Check(bool ok, string name, object value, string rule)
        {
            if (!ok) throw new ArgumentException($"{name} {rule}, got {value}.", name);
        }

        Check(double.IsFinite(LearningRate) && LearningRate > 0, nameof(LearningRate), LearningRate, "must be a positive finite number");
        Check(WarmupRatio is >= 0 and < 1, nameof(WarmupRatio), WarmupRatio, "must be in [0, 1)");
        Check(MinLearningRateRatio is >= 0 and <= 1, nameof(MinLearningRateRatio), MinLearningRateRatio, "must be in [0, 1]");
        Check(double.IsFinite(WeightDecay) && WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "must be a non-negative finite number");
        Check(Beta1 is >= 0 and < 1, nameof(Beta1), Beta1, "must be in [0, 1)");
        Check(Beta2 is >= 0 and < 1, nameof(Beta2), Beta2, "must be in [0, 1)");
        Check(double.IsFinite(Epsilon) && Epsilon > 0, nameof(Epsilon), Epsilon, "must be a positive finite number");
        Check(GradientAccumulationSteps > 0, nameof(GradientAccumulationSteps), GradientAccumulationSteps, "must be positive");
        Check(double.IsFinite(MaxGradientNorm) && MaxGradientNorm >= 0, nameof(MaxGradientNorm), MaxGradientNorm, "must be a non-negative finite number");
        Check(Loss is not null, nameof(Loss), "null", "must be set");
        Loss!.Validate();
        Check(Dpo is not null, nameof(Dpo), "null", "must be set");
        Dpo!.Validate();
        Check(Rrhf is not null, nameof(Rrhf), "null", "must be set");
        Rrhf!.Validate();
        Check(Enum.IsDefined(LossBackend), nameof(LossBackend), LossBackend, "must be a defined backend");
        Check(HeapTrimThresholdBytes >= 0, nameof(HeapTrimThresholdBytes), HeapTrimThresholdBytes, "must be non-negative");
        Check(ValidateEverySteps >= 0, nameof(ValidateEverySteps), ValidateEverySteps, "must be non-negative");
        Check(MaxConsecutiveNonFiniteSteps > 0, nameof(MaxConsecutiveNonFiniteSteps), MaxConsecutiveNonFiniteSteps, "must be positive");
        Check(CheckpointEverySteps >= 0, nameof(CheckpointEverySteps), CheckpointEverySteps, "must be non-negative");
        Check(CheckpointEverySteps == 0 || CheckpointDirectory is not null, nameof(CheckpointEverySteps), CheckpointEverySteps, "needs a CheckpointDirectory");
        foreach (var (stage, directory) in StageSnapshots ?? new Dictionary<string, string>())
            Check(!string.IsNullOrWhiteSpace(stage) && !string.IsNullOrWhiteSpace(directory), nameof(StageSnapshots), $"'{stage}' -> '{directory}'", "needs a stage name and a directory");
        Lora?.Validate();
        return this;
    }
}

/// <summary>Thrown when too many consecutive steps had a non-finite loss or gradient.</summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException() { }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What happened.</param>
    public TrainingDivergedException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What happened.</param>
    /// <param name="innerException">The cause.</param>
    public TrainingDivergedException(string message, Exception innerException) : base(message, innerException) { }
}
