using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Data;

namespace StableAlignment.Core.Training;

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
    /// <summary>The name of the imitation stage (IL).</summary>
    public const string Imitation = "imitation";

    /// <summary>The name of the self-critic stage (SC).</summary>
    public const string SelfCritic = "self-critic";

    /// <summary>The name of the realignment stage (RA).</summary>
    public const string Realignment = "realignment";

    /// <summary>The names of <paramref name="recipe"/>'s stages, in order.</summary>
    /// <param name="recipe">The recipe.</param>
    /// <returns>The stage names.</returns>
    public static IReadOnlyList<string> NamesOf(AlignmentRecipe recipe) => recipe switch
    {
        AlignmentRecipe.Imitation => [Imitation],
        AlignmentRecipe.ImitationSelfCritic => [Imitation, SelfCritic],
        AlignmentRecipe.ImitationSelfCriticRealignment or AlignmentRecipe.SftOnly => [Imitation, SelfCritic, Realignment],
        _ => throw new ArgumentOutOfRangeException(nameof(recipe), recipe, "Unknown recipe."),
    };

    /// <summary>
    /// The stages of <paramref name="recipe"/> from datasets: each kind of sample is cut into batches as
    /// <paramref name="batches"/> says, and the held-out imitation queries validate every stage.
    /// </summary>
    /// <param name="recipe">Which stages to run.</param>
    /// <param name="train">The training data (all kinds).</param>
    /// <param name="heldOut">Held-out data whose imitation queries validate every stage, or null.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="batches">How each kind is batched.</param>
    /// <param name="epochs">Epochs per stage.</param>
    /// <returns>The stages, in order.</returns>
    /// <exception cref="ArgumentException">A kind the recipe needs has no samples; the message names it.</exception>
    public static IReadOnlyList<TrainingStage> For(AlignmentRecipe recipe, AlignmentDataset train, AlignmentDataset? heldOut, Tokenizer tokenizer,
        AlignmentBatchRecipe batches, int epochs = 1)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(batches);
        PreferenceBatcher Of(SampleKind kind)
        {
            var subset = train.OfKind(kind);
            if (subset.Records.Count == 0)
                throw new ArgumentException($"The training set has no {kind} samples, which recipe {recipe} needs: simulate more rounds.", nameof(train));
            return subset.CreateBatcher(tokenizer, batches.For(kind));
        }
        bool needsSelfCritic = recipe != AlignmentRecipe.Imitation;
        bool needsRealignment = recipe is AlignmentRecipe.ImitationSelfCriticRealignment or AlignmentRecipe.SftOnly;
        return For(recipe, Of(SampleKind.Imitation), needsSelfCritic ? Of(SampleKind.SelfCritic) : null,
            needsRealignment ? Of(SampleKind.Realignment) : null, heldOut is null ? null : batches.HeldOutBatcher(heldOut, tokenizer), epochs);
    }

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
            new() { Name = Imitation, Train = imitation, Objective = sft ? TrainingObjective.Sft : TrainingObjective.Contrastive, Epochs = epochs, Validation = validation },
        };
        if (recipe != AlignmentRecipe.Imitation)
            stages.Add(new() { Name = SelfCritic, Train = Need(selfCritic, nameof(selfCritic), recipe), Objective = TrainingObjective.Sft, Epochs = epochs, Validation = validation });
        if (recipe is AlignmentRecipe.ImitationSelfCriticRealignment or AlignmentRecipe.SftOnly)
            stages.Add(new() { Name = Realignment, Train = Need(realignment, nameof(realignment), recipe), Objective = sft ? TrainingObjective.Sft : TrainingObjective.Contrastive, Epochs = epochs, Validation = validation });
        return stages.Select(s => s.Validate()).ToList();
    }
}

/// <summary>
/// How each kind of alignment data is cut into batches for its stage, and how held-out queries are batched to measure
/// ranking. The experiment records it beside the checkpoints, so evaluation batches held-out data exactly as
/// training validated on it.
/// </summary>
public sealed record AlignmentBatchRecipe
{
    /// <summary>Imitation: one group per query, the best response and two others (the reference's k = 3).</summary>
    public PreferenceBatchOptions Imitation { get; init; } = new() { Grouping = BatchGrouping.ByQuery, ResponsesPerQuery = 3 };

    /// <summary>Self-critic: every critique its own group (plain SFT), three times as many groups per batch.</summary>
    public PreferenceBatchOptions SelfCritic { get; init; } = new() { Grouping = BatchGrouping.EachResponse, ResponsesPerQuery = 1, GroupsPerBatch = 24 };

    /// <summary>Realignment: one group per query, as imitation.</summary>
    public PreferenceBatchOptions Realignment { get; init; } = new() { Grouping = BatchGrouping.ByQuery, ResponsesPerQuery = 3 };

    /// <summary>Held-out imitation queries with (up to 16 of) all their responses: the ranking yardstick.</summary>
    public PreferenceBatchOptions HeldOut { get; init; } = new() { Grouping = BatchGrouping.ByQuery, ResponsesPerQuery = 16 };

    /// <summary>
    /// The paper's recipe at a given row length, batch size and seed; responses longer than a row are truncated, so
    /// every sample takes part.
    /// </summary>
    /// <param name="maxLength">Tokens per row.</param>
    /// <param name="groupsPerBatch">Queries per batch (self-critic takes three times as many single-response groups).</param>
    /// <param name="seed">Seed of response draws and batch order.</param>
    /// <returns>The recipe.</returns>
    public static AlignmentBatchRecipe Paper(int maxLength, int groupsPerBatch, int seed)
    {
        var recipe = new AlignmentBatchRecipe();
        PreferenceBatchOptions Sized(PreferenceBatchOptions o, int groups) => (o with
        {
            MaxLength = maxLength,
            GroupsPerBatch = groups,
            Seed = seed,
            OverlongResponse = OverlongResponsePolicy.Truncate,
        }).Validate();
        return new AlignmentBatchRecipe
        {
            Imitation = Sized(recipe.Imitation, groupsPerBatch),
            SelfCritic = Sized(recipe.SelfCritic, groupsPerBatch * 3),
            Realignment = Sized(recipe.Realignment, groupsPerBatch),
            HeldOut = Sized(recipe.HeldOut, groupsPerBatch),
        };
    }

    /// <summary>The batch options of one kind of training data.</summary>
    /// <param name="kind">The kind.</param>
    /// <returns>Its options.</returns>
    public PreferenceBatchOptions For(SampleKind kind) => kind switch
    {
        SampleKind.Imitation => Imitation,
        SampleKind.SelfCritic => SelfCritic,
        SampleKind.Realignment => Realignment,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown sample kind."),
    };

    /// <summary>The held-out batches of a dataset: its imitation queries, batched with <see cref="HeldOut"/>.</summary>
    /// <param name="heldOut">The held-out data.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <returns>The batcher.</returns>
    /// <exception cref="ArgumentException">The held-out data has no imitation queries.</exception>
    public PreferenceBatcher HeldOutBatcher(AlignmentDataset heldOut, Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(heldOut);
        var subset = heldOut.OfKind(SampleKind.Imitation);
        if (subset.Records.Count == 0) throw new ArgumentException("The held-out set has no imitation queries to rank.", nameof(heldOut));
        return subset.CreateBatcher(tokenizer, HeldOut);
    }
}
