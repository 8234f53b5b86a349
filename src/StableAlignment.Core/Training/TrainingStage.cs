namespace StableAlignment.Core.Training;

/// <summary>What a stage optimises.</summary>
public enum TrainingObjective
{
    /// <summary>The contrastive preference loss: SFT on the best response plus the weighted ranking term.</summary>
    Contrastive,

    /// <summary>Plain supervised fine-tuning: the NLL of the best-rated response of each query only.</summary>
    Sft,
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

    /// <summary>Held-out batches evaluated every <see cref="TrainerOptions.ValidateEverySteps"/> steps and at the stage's end; null skips validation.</summary>
    public IPreferenceBatchSource? Validation { get; init; }

    /// <summary>Checks the stage and throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    /// <returns>This instance, for chaining.</returns>
    public TrainingStage Validate()
    {
        if (string.IsNullOrWhiteSpace(Name)) throw new ArgumentException("A stage needs a non-empty Name.", nameof(Name));
        if (Train is null) throw new ArgumentException($"Stage '{Name}' has no Train source.", nameof(Train));
        if (!Enum.IsDefined(Objective)) throw new ArgumentException($"Stage '{Name}': unknown objective {(int)Objective}.", nameof(Objective));
        if (Epochs <= 0) throw new ArgumentException($"Stage '{Name}': Epochs must be positive, got {Epochs}.", nameof(Epochs));
        if (LearningRate is double lr && !(lr > 0 && double.IsFinite(lr)))
            throw new ArgumentException($"Stage '{Name}': LearningRate must be positive and finite, got {lr}.", nameof(LearningRate));
        return this;
    }
}

/// <summary>The paper's stage combinations (ablations) and the SFT-only baseline.</summary>
public enum AlignmentRecipe
{
    /// <summary>Imitation data with the contrastive objective (IL).</summary>
    Imitation,

    /// <summary>IL, then self-critic data with SFT (IL+SC).</summary>
    ImitationSelfCritic,

    /// <summary>IL, SC, then realignment data with the contrastive objective (IL+SC+RA): full Stable Alignment.</summary>
    ImitationSelfCriticRealignment,

    /// <summary>The same data as IL+SC+RA, every stage trained with plain SFT: the baseline.</summary>
    SftOnly,
}

/// <summary>Builds the stage lists of <see cref="AlignmentRecipe"/>s from the three kinds of alignment data.</summary>
public static class AlignmentStages
{
    /// <summary>The stages of <paramref name="recipe"/>.</summary>
    /// <param name="recipe">Which stages to run.</param>
    /// <param name="imitation">Imitation batches (required).</param>
    /// <param name="selfCritic">Self-critic batches; required by every recipe but <see cref="AlignmentRecipe.Imitation"/>.</param>
    /// <param name="realignment">Realignment batches; required by the full recipe and the SFT baseline.</param>
    /// <param name="validation">Held-out batches used to validate every stage (ranking accuracy on the same queries throughout), or null.</param>
    /// <param name="epochs">Epochs per stage. Default 1.</param>
    /// <returns>The stages, in order.</returns>
    public static IReadOnlyList<TrainingStage> For(AlignmentRecipe recipe, IPreferenceBatchSource imitation, IPreferenceBatchSource? selfCritic = null,
        IPreferenceBatchSource? realignment = null, IPreferenceBatchSource? validation = null, int epochs = 1)
    {
        ArgumentNullException.ThrowIfNull(imitation);
        static IPreferenceBatchSource Need(IPreferenceBatchSource? source, string name, AlignmentRecipe recipe) =>
            source ?? throw new ArgumentException($"Recipe {recipe} needs {name} data.", name);

        var sft = recipe == AlignmentRecipe.SftOnly;
        var stages = new List<TrainingStage>
        {
            new() { Name = "imitation", Train = imitation, Objective = sft ? TrainingObjective.Sft : TrainingObjective.Contrastive, Epochs = epochs, Validation = validation },
        };
        if (recipe != AlignmentRecipe.Imitation)
            stages.Add(new() { Name = "self-critic", Train = Need(selfCritic, nameof(selfCritic), recipe), Objective = TrainingObjective.Sft, Epochs = epochs, Validation = validation });
        if (recipe is AlignmentRecipe.ImitationSelfCriticRealignment or AlignmentRecipe.SftOnly)
            stages.Add(new() { Name = "realignment", Train = Need(realignment, nameof(realignment), recipe), Objective = sft ? TrainingObjective.Sft : TrainingObjective.Contrastive, Epochs = epochs, Validation = validation });
        return stages.Select(s => s.Validate()).ToList();
    }
}
