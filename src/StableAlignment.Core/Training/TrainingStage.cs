using StableAlignment.Core.Data;

namespace StableAlignment.Core.Training;

/// <summary>What a stage optimises.</summary>
public enum TrainingObjective
{
    /// <summary>The contrastive preference loss: SFT on the best response plus the weighted ranking term.</summary>
    Contrastive,

    /// <summary>Plain supervised fine-tuning: the NLL of the best-rated response of each query only.</summary>
    Sft,

    /// <summary>Direct Preference Optimization (<see cref="DpoLoss"/>) against the stage's <see cref="TrainingStage.Reference"/>.</summary>
    Dpo,

    /// <summary>RRHF (<see cref="RrhfLoss"/>): a ranking hinge over every ordered pair plus SFT on the best response.</summary>
    Rrhf,
}

/// <summary>One stage of a training run: its data, objective and length.</summary>
public sealed record TrainingStage
{
    /// <summary>A name for logs and metrics, e.g. "imitation".</summary>
    public required string Name { get; init; }

    /// <summary>The training batches.</summary>
    public required IPreferenceBatchSource Train { get; init; }

    /// <summary>The objective. Default <see cref="TrainingObjective.Contrastive"/>.</summary>
    public TrainingObjective Objective { get; init; } = TrainingObjective.Contrastive;

    /// <summary>Passes over <see cref="Train"/>. Default 1.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>
    /// This stage's peak learning rate, or null for <see cref="TrainerOptions.LearningRate"/>. Later stages often run
    /// lower so that they add to what earlier stages learned rather than overwrite it.
    /// </summary>
    public double? LearningRate { get; init; }

    /// <summary>
    /// The frozen reference model of a <see cref="TrainingObjective.Dpo"/> stage (required there, unused otherwise), for
    /// training and validation batches alike. The stage does not own it: dispose it after training.
    /// </summary>
    public ReferenceModel? Reference { get; init; }

    /// <summary>Held-out batches evaluated every <see cref="TrainerOptions.ValidateEverySteps"/> steps and at the stage's end; null skips validation.</summary>
    public IPreferenceBatchSource? Validation { get; init; }

    /// <summary>Checks the stage and throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    /// <returns>This instance, for chaining.</returns>
    public TrainingStage Validate()
    {
        if (string.IsNullOrWhiteSpace(Name)) throw new ArgumentException("A stage needs a non-empty Name.", nameof(Name));
        if (Train is null) throw new ArgumentException($"Stage '{Name}' has no Train source.", nameof(Train));
        if (!Enum.IsDefined(Objective)) throw new ArgumentException($"Stage '{Name}': unknown objective {(int)Objective}.", nameof(Objective));
        if (Objective == TrainingObjective.Dpo && Reference is null)
            throw new ArgumentException($"Stage '{Name}': objective Dpo needs a Reference model (for example the model after an SFT stage).", nameof(Reference));
        if (Epochs <= 0) throw new ArgumentException($"Stage '{Name}': Epochs must be positive, got {Epochs}.", nameof(Epochs));
        if (LearningRate is double lr && !(lr > 0 && double.IsFinite(lr)))
            throw new ArgumentException($"Stage '{Name}': LearningRate must be positive and finite, got {lr}.", nameof(LearningRate));
        return this;
    }
}
