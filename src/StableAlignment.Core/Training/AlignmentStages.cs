using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Data;

namespace StableAlignment.Core.Training;

/// <summary>The paper's stage combinations (ablations) and the baselines it compares them with.</summary>
public enum AlignmentRecipe
{
    /// <summary>Imitation data with the contrastive objective (IL).</summary>
    Imitation,

    /// <summary>IL, then self-critic data with SFT (IL+SC).</summary>
    ImitationSelfCritic,

    /// <summary>IL, SC, then realignment data with the contrastive objective (IL+SC+RA): full Stable Alignment.</summary>
    ImitationSelfCriticRealignment,

    /// <summary>Baseline: SFT on the best-rated response of every query of the union of the three kinds of data.</summary>
    SftOnly,

    /// <summary>Baseline: an SFT phase on the union of the data, then DPO on it against the model after that phase.</summary>
    Dpo,

    /// <summary>Baseline: an SFT phase on the union of the data, then RRHF on it.</summary>
    Rrhf,
}

/// <summary>
/// Builds the stage lists of <see cref="AlignmentRecipe"/>s: the paper's stages from the three kinds of alignment
/// data (<see cref="For(AlignmentRecipe, IPreferenceBatchSource, IPreferenceBatchSource?, IPreferenceBatchSource?, IPreferenceBatchSource?, int)"/>),
/// and the baselines from their union with a fixed step budget (<see cref="Baseline"/>).
/// </summary>
public static class AlignmentStages
{
    /// <summary>The name of the imitation stage (IL).</summary>
    public const string Imitation = "imitation";

    /// <summary>The name of the self-critic stage (SC).</summary>
    public const string SelfCritic = "self-critic";

    /// <summary>The name of the realignment stage (RA).</summary>
    public const string Realignment = "realignment";

    /// <summary>The name of a baseline's SFT stage (all of <see cref="AlignmentRecipe.SftOnly"/>, the first phase of DPO and RRHF).</summary>
    public const string Sft = "sft";

    /// <summary>The name of the DPO baseline's preference stage.</summary>
    public const string Dpo = "dpo";

    /// <summary>The name of the RRHF baseline's preference stage.</summary>
    public const string Rrhf = "rrhf";

    /// <summary>Not a stage: the model before the first stage of any recipe, the starting point every recipe shares.</summary>
    public const string Start = "start";

    /// <summary>The names of <paramref name="recipe"/>'s stages, in order.</summary>
    /// <param name="recipe">The recipe.</param>
    /// <returns>The stage names.</returns>
    public static IReadOnlyList<string> NamesOf(AlignmentRecipe recipe) => recipe switch
    {
        AlignmentRecipe.Imitation => [Imitation],
        AlignmentRecipe.ImitationSelfCritic => [Imitation, SelfCritic],
        AlignmentRecipe.ImitationSelfCriticRealignment => [Imitation, SelfCritic, Realignment],
        AlignmentRecipe.SftOnly => [Sft],
        AlignmentRecipe.Dpo => [Sft, Dpo],
        AlignmentRecipe.Rrhf => [Sft, Rrhf],
        _ => throw new ArgumentOutOfRangeException(nameof(recipe), recipe, "Unknown recipe."),
    };

    /// <summary>Whether <paramref name="recipe"/> is a baseline, trained on the union of the data with <see cref="Baseline"/>.</summary>
    /// <param name="recipe">The recipe.</param>
    /// <returns>True for <see cref="AlignmentRecipe.SftOnly"/>, <see cref="AlignmentRecipe.Dpo"/> and <see cref="AlignmentRecipe.Rrhf"/>.</returns>
    public static bool IsBaseline(AlignmentRecipe recipe) => recipe is AlignmentRecipe.SftOnly or AlignmentRecipe.Dpo or AlignmentRecipe.Rrhf;

    /// <summary>
    /// The stages of <paramref name="recipe"/> from datasets: each kind of sample is cut into batches as
    /// <paramref name="batches"/> says, and the held-out imitation queries validate every stage.
    /// </summary>
    /// <param name="recipe">Which stages to run: one of the paper's (not a baseline).</param>
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
        return For(recipe, Of(SampleKind.Imitation), NeedsSelfCritic(recipe) ? Of(SampleKind.SelfCritic) : null,
            NeedsRealignment(recipe) ? Of(SampleKind.Realignment) : null, heldOut is null ? null : batches.HeldOutBatcher(heldOut, tokenizer), epochs);
    }

    /// <summary>The stages of one of the paper's recipes (IL, IL+SC, IL+SC+RA).</summary>
    /// <param name="recipe">Which stages to run: one of the paper's (not a baseline).</param>
    /// <param name="imitation">Imitation batches (required).</param>
    /// <param name="selfCritic">Self-critic batches; required by every recipe but <see cref="AlignmentRecipe.Imitation"/>.</param>
    /// <param name="realignment">Realignment batches; required by the full recipe.</param>
    /// <param name="validation">Held-out batches used to validate every stage (ranking accuracy on the same queries throughout), or null.</param>
    /// <param name="epochs">Epochs per stage. Default 1.</param>
    /// <returns>The stages, in order.</returns>
    /// <exception cref="ArgumentException">The recipe is a baseline (use <see cref="Baseline"/>), or data it needs is missing.</exception>
    public static IReadOnlyList<TrainingStage> For(AlignmentRecipe recipe, IPreferenceBatchSource imitation, IPreferenceBatchSource? selfCritic = null,
        IPreferenceBatchSource? realignment = null, IPreferenceBatchSource? validation = null, int epochs = 1)
    {
        ArgumentNullException.ThrowIfNull(imitation);
        if (IsBaseline(recipe))
            throw new ArgumentException($"Recipe {recipe} is a baseline trained on the union of the data: build its stages with AlignmentStages.Baseline.", nameof(recipe));
        static IPreferenceBatchSource Need(IPreferenceBatchSource? source, string name, AlignmentRecipe recipe) =>
            source ?? throw new ArgumentException($"Recipe {recipe} needs {name} data.", name);

        var stages = new List<TrainingStage>
        {
            new() { Name = Imitation, Train = imitation, Objective = TrainingObjective.Contrastive, Epochs = epochs, Validation = validation },
        };
        if (NeedsSelfCritic(recipe))
            stages.Add(new() { Name = SelfCritic, Train = Need(selfCritic, nameof(selfCritic), recipe), Objective = TrainingObjective.Sft, Epochs = epochs, Validation = validation });
        if (NeedsRealignment(recipe))
            stages.Add(new() { Name = Realignment, Train = Need(realignment, nameof(realignment), recipe), Objective = TrainingObjective.Contrastive, Epochs = epochs, Validation = validation });
        return stages.Select(s => s.Validate()).ToList();
    }

    /// <summary>
    /// The stages of a baseline: <paramref name="steps"/> optimizer steps over <paramref name="union"/> (the union of
    /// the three kinds of data, read as one endless stream of its epochs). <see cref="AlignmentRecipe.SftOnly"/> spends
    /// them all on SFT; DPO and RRHF start as TRL's recipes do, with an SFT phase of <paramref name="sftSteps"/> steps,
    /// and spend the rest on their objective over the batches that follow. DPO's frozen reference is
    /// <paramref name="reference"/>, usually the model after the SFT phase (<see cref="ReferenceModel.FromCheckpoint"/>
    /// on that stage's snapshot).
    /// </summary>
    /// <param name="recipe">A baseline recipe.</param>
    /// <param name="union">Batches of the union of the data, grouped by query (without gradient accumulation, one batch is one step).</param>
    /// <param name="steps">Optimizer steps in all, usually those of the full IL+SC+RA run (<see cref="StepsOf"/>).</param>
    /// <param name="sftSteps">Steps of the SFT phase of DPO and RRHF (ignored by SftOnly); from a pretrained model it may be 0.</param>
    /// <param name="reference">DPO's reference model; required by DPO, unused otherwise.</param>
    /// <param name="validation">Held-out batches used to validate every stage, or null.</param>
    /// <returns>The stages, in order.</returns>
    /// <exception cref="ArgumentException">The recipe is not a baseline, the step counts do not fit, or DPO has no reference.</exception>
    public static IReadOnlyList<TrainingStage> Baseline(AlignmentRecipe recipe, IPreferenceBatchSource union, int steps, int sftSteps,
        ReferenceModel? reference = null, IPreferenceBatchSource? validation = null)
    {
        ArgumentNullException.ThrowIfNull(union);
        if (!IsBaseline(recipe)) throw new ArgumentException($"Recipe {recipe} is not a baseline: build its stages with AlignmentStages.For.", nameof(recipe));
        if (steps < 1) throw new ArgumentException($"A baseline needs at least one step, got {steps}.", nameof(steps));
        if (recipe == AlignmentRecipe.SftOnly)
            return [new TrainingStage { Name = Sft, Train = new BatchWindow(union, 0, steps), Objective = TrainingObjective.Sft, Validation = validation }.Validate()];
        if (sftSteps < 0 || sftSteps >= steps)
            throw new ArgumentException($"The SFT phase must take from 0 to {steps - 1} of the {steps} steps, got {sftSteps}.", nameof(sftSteps));
        var (name, objective) = recipe == AlignmentRecipe.Dpo ? (Dpo, TrainingObjective.Dpo) : (Rrhf, TrainingObjective.Rrhf);
        var stages = new List<TrainingStage>();
        if (sftSteps > 0)
            stages.Add(new TrainingStage { Name = Sft, Train = new BatchWindow(union, 0, sftSteps), Objective = TrainingObjective.Sft, Validation = validation });
        stages.Add(new TrainingStage
        {
            Name = name,
            Train = new BatchWindow(union, sftSteps, steps - sftSteps),
            Objective = objective,
            Reference = recipe == AlignmentRecipe.Dpo ? reference : null,
            Validation = validation,
        });
        return stages.Select(s => s.Validate()).ToList();
    }

    /// <summary>Optimizer steps of a list of stages without gradient accumulation: batches per epoch times epochs, summed.</summary>
    /// <param name="stages">The stages; every source must know its <see cref="IPreferenceBatchSource.Count"/>.</param>
    /// <returns>The steps.</returns>
    /// <exception cref="ArgumentException">A source does not know its count.</exception>
    public static int StepsOf(IEnumerable<TrainingStage> stages)
    {
        ArgumentNullException.ThrowIfNull(stages);
        return stages.Sum(s => (s.Train.Count ?? throw new ArgumentException($"Stage '{s.Name}' has a source that does not know its batch count.", nameof(stages))) * s.Epochs);
    }

    private static bool NeedsSelfCritic(AlignmentRecipe recipe) => recipe is AlignmentRecipe.ImitationSelfCritic or AlignmentRecipe.ImitationSelfCriticRealignment;

    private static bool NeedsRealignment(AlignmentRecipe recipe) => recipe == AlignmentRecipe.ImitationSelfCriticRealignment;
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

    /// <summary>The baselines' data: the union of the three kinds, one group per query with the best response and two others.</summary>
    public PreferenceBatchOptions Union { get; init; } = new() { Grouping = BatchGrouping.ByQuery, ResponsesPerQuery = 3 };

    /// <summary>Held-out imitation queries with (up to 16 of) all their responses: the ranking yardstick.</summary>
    public PreferenceBatchOptions HeldOut { get; init; } = new() { Grouping = BatchGrouping.ByQuery, ResponsesPerQuery = 16 };

    /// <summary>
    /// The paper's recipe at a given row length, batch size and seed; responses longer than a row are truncated, so
    /// every sample takes part.
    /// </summary>
    /// <param name="maxLength">Tokens per row.</param>
    /// <param name="groupsPerBatch">Queries per batch (self-critic takes three times as many single-response groups).</param>
    /// <param name="seed">Seed of response draws and batch order.</param>
    /// <param name="appendEndOfText">End every response with the end-of-text token (<see cref="PreferenceBatchOptions.AppendEndOfText"/>).</param>
    /// <returns>The recipe.</returns>
    public static AlignmentBatchRecipe Paper(int maxLength, int groupsPerBatch, int seed, bool appendEndOfText = false)
    {
        var recipe = new AlignmentBatchRecipe();
        PreferenceBatchOptions Sized(PreferenceBatchOptions o, int groups) => (o with
        {
            MaxLength = maxLength,
            GroupsPerBatch = groups,
            Seed = seed,
            OverlongResponse = OverlongResponsePolicy.Truncate,
            AppendEndOfText = appendEndOfText,
        }).Validate();
        return new AlignmentBatchRecipe
        {
            Imitation = Sized(recipe.Imitation, groupsPerBatch),
            SelfCritic = Sized(recipe.SelfCritic, groupsPerBatch * 3),
            Realignment = Sized(recipe.Realignment, groupsPerBatch),
            Union = Sized(recipe.Union, groupsPerBatch),
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
