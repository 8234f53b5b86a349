using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Models;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Experiment;

/// <summary>
/// Everything a <see cref="StableAlignmentExperiment"/> run needs: the society, the dataset, the model, training,
/// evaluation, the compared variants and the number of training seeds. <see cref="Default"/> is the main job (under ten
/// minutes on two cores), <see cref="Quick"/> a smaller one (under two). Every step is seeded from <see cref="Seed"/>,
/// so the same options give the same report.
/// </summary>
public sealed record ExperimentOptions
{
    /// <summary>Seed of the society, the dataset's build and split, and of the first training seed (see <see cref="Seeds"/>). Default 42.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>
    /// Training seeds K: training and evaluation are repeated K times on the same data, with the training seeds
    /// <see cref="Seed"/>, <see cref="Seed"/> + 1, ... (the model's initial weights, the batches' order and draws, the
    /// sampling of answers), and the report gives the mean ± standard deviation across them. 1 trains and evaluates
    /// once. Default 1: with the three baselines the default run trains four times over, and a second seed does not fit
    /// its ten minutes on two cores (<c>--seeds 2</c> about doubles training and evaluation).
    /// </summary>
    public int Seeds { get; init; } = 1;

    /// <summary>
    /// The world and its protocol. Its <see cref="SandboxOptions.Seed"/> is replaced by <see cref="Seed"/>. Default: a
    /// 6 x 6 grid, two feedback-revision passes (so realignment groups can hold three rated answers), otherwise the
    /// reference's settings.
    /// </summary>
    public SandboxOptions Sandbox { get; init; } = new() { GridSize = 6, Layout = PersonaLayout.RandomHalfAndHalf, MaxFeedbackPasses = 2 };

    /// <summary>Rounds to simulate. Default 80 (2,880 interactions on the default grid).</summary>
    public int Rounds { get; init; } = 80;

    /// <summary>How model calls are made (concurrency, retries, timeouts, budget), for the agents and the judge.</summary>
    public ModelCallOptions Calls { get; init; } = new();

    /// <summary>How samples are built from the log. Its <see cref="AlignmentDatasetOptions.Seed"/> is replaced by <see cref="Seed"/>.</summary>
    public AlignmentDatasetOptions Dataset { get; init; } = new();

    /// <summary>Share of distinct queries held out for validation and evaluation. Default 0.25.</summary>
    public double ValidationFraction { get; init; } = 0.25;

    /// <summary>A released-format file (JSON array or JSON Lines) to build the dataset from instead of simulating; null simulates.</summary>
    public string? ReleasedDataset { get; init; }

    /// <summary>The model.</summary>
    public ExperimentModelOptions Model { get; init; } = new();

    /// <summary>Training.</summary>
    public ExperimentTrainingOptions Training { get; init; } = new();

    /// <summary>Evaluation.</summary>
    public ExperimentEvaluationOptions Evaluation { get; init; } = new();

    /// <summary>The compared variants, in the report's row order. Default <see cref="ExperimentVariant.Paper"/>: the starting model, SFT, DPO, RRHF, IL, IL+SC, IL+SC+RA.</summary>
    public IReadOnlyList<ExperimentVariant> Variants { get; init; } = ExperimentVariant.Paper;

    /// <summary>The main job: about ten minutes on two cores.</summary>
    public static ExperimentOptions Default { get; } = new();

    /// <summary>A smaller world and model, one training seed: the whole run takes well under two minutes on two cores.</summary>
    public static ExperimentOptions Quick { get; } = new()
    {
        Seeds = 1,
        Sandbox = new SandboxOptions { GridSize = 4, Layout = PersonaLayout.RandomHalfAndHalf, MaxFeedbackPasses = 2 },
        Rounds = 24,
        Model = new ExperimentModelOptions { HiddenSize = 96 },
        Evaluation = new ExperimentEvaluationOptions { JudgePrompts = 12, MaxNewTokens = 24, MultipleChoiceItems = 60 },
    };

    /// <summary>The world as the experiment runs it: <see cref="Sandbox"/> seeded with <see cref="Seed"/>.</summary>
    public SandboxOptions SeededSandbox => Sandbox with { Seed = Seed };

    /// <summary>The training seed of run <paramref name="index"/> (0 to <see cref="Seeds"/> - 1): <see cref="Seed"/> + index.</summary>
    /// <param name="index">The run's index.</param>
    /// <returns>Its seed.</returns>
    public int TrainingSeed(int index) => Seed + index;

    /// <summary>Checks every setting and throws an <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public ExperimentOptions Validate()
    {
        static void Check(bool ok, string name, string message)
        {
            if (!ok) throw new ArgumentException($"ExperimentOptions.{name}: {message}", name);
        }

        Check(Sandbox is not null, nameof(Sandbox), "must be set.");
        SeededSandbox.Validate();
        Check(Rounds >= 1, nameof(Rounds), $"must be at least 1, got {Rounds}.");
        Check(Seeds >= 1, nameof(Seeds), $"must be at least 1, got {Seeds}.");
        Check(Calls is not null, nameof(Calls), "must be set.");
        Calls!.Validate();
        Check(Dataset is not null, nameof(Dataset), "must be set.");
        Dataset!.Validate();
        Check(ValidationFraction is > 0 and < 1, nameof(ValidationFraction), $"must lie strictly between 0 and 1, got {ValidationFraction}.");
        Check(ReleasedDataset is null || ReleasedDataset.Length > 0, nameof(ReleasedDataset), "must not be empty.");
        Check(Model is not null, nameof(Model), "must be set.");
        Model!.Validate();
        Check(Training is not null, nameof(Training), "must be set.");
        Training!.Validate();
        Check(Evaluation is not null, nameof(Evaluation), "must be set.");
        Evaluation!.Validate();
        Check(Variants is { Count: > 0 }, nameof(Variants), "must name at least one variant.");
        foreach (var v in Variants!) v.Validate();
        var duplicate = Variants.GroupBy(v => v.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        Check(duplicate is null, nameof(Variants), $"names '{duplicate?.Key}' twice.");
        var sameFolder = Variants.GroupBy(v => v.FolderName, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        Check(sameFolder is null, nameof(Variants), $"'{string.Join("' and '", sameFolder?.Select(v => v.Name) ?? [])}' would share the folder '{sameFolder?.Key}'.");
        Check(Variants.Any(v => !v.IsStart && !AlignmentStages.IsBaseline(v.Recipe)), nameof(Variants), "must name at least one stage of Stable Alignment's recipes.");
        return this;
    }
}

/// <summary>The experiment's model: a tiny LLaMA-style model trained from scratch, or a Hugging Face checkpoint to start from.</summary>
public sealed record ExperimentModelOptions
{
    /// <summary>Hidden size of the tiny model. Default 128.</summary>
    public int HiddenSize { get; init; } = 128;

    /// <summary>Decoder layers of the tiny model. Default 2.</summary>
    public int Layers { get; init; } = 2;

    /// <summary>Attention heads of the tiny model. Default 4.</summary>
    public int Heads { get; init; } = 4;

    /// <summary>Key-value heads of the tiny model (grouped-query attention). Default 2.</summary>
    public int KeyValueHeads { get; init; } = 2;

    /// <summary>Tokens per training row (prompt + response), and the tiny model's context. Default 192.</summary>
    public int MaxLength { get; init; } = 192;

    /// <summary>A Hugging Face safetensors checkpoint folder (config.json, *.safetensors, tokenizer.json) to start from; null trains the tiny model.</summary>
    public string? InitFrom { get; init; }

    /// <summary>Checks the settings and throws an <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public ExperimentModelOptions Validate()
    {
        static void Check(bool ok, string name, string message)
        {
            if (!ok) throw new ArgumentException($"ExperimentModelOptions.{name}: {message}", name);
        }

        Check(HiddenSize >= 8, nameof(HiddenSize), $"must be at least 8, got {HiddenSize}.");
        Check(Layers >= 1, nameof(Layers), $"must be at least 1, got {Layers}.");
        Check(Heads >= 1 && HiddenSize % Heads == 0, nameof(Heads), $"must be positive and divide HiddenSize {HiddenSize}, got {Heads}.");
        Check(KeyValueHeads >= 1 && Heads % KeyValueHeads == 0, nameof(KeyValueHeads), $"must be positive and divide Heads {Heads}, got {KeyValueHeads}.");
        Check(MaxLength >= 2, nameof(MaxLength), $"must be at least 2, got {MaxLength}.");
        Check(InitFrom is null || InitFrom.Length > 0, nameof(InitFrom), "must not be empty.");
        return this;
    }
}

/// <summary>How the experiment trains every variant.</summary>
public sealed record ExperimentTrainingOptions
{
    /// <summary>Epochs per stage. Default 1 (the default run's ten minutes on two cores hold four trainings of this many epochs).</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Peak learning rate of the first stage. Default 3e-3.</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>
    /// Peak learning rate of every later stage, as a share of <see cref="LearningRate"/>, for every recipe alike. At the
    /// full rate the later stages' SFT updates erase the ranking the first stage learned. Default 0.3.
    /// </summary>
    public double LaterStageLearningRateScale { get; init; } = 0.3;

    /// <summary>Queries per batch. Default 8.</summary>
    public int GroupsPerBatch { get; init; } = 8;

    /// <summary>The objective: margin M = 10 (the reference README's value) and ranking weight 0.5 by default.</summary>
    public ContrastivePreferenceOptions Loss { get; init; } = new() { Margin = 10, RankingWeight = 0.5 };

    /// <summary>
    /// About how many validation points each curve gets besides each stage's last. Validation scores every held-out
    /// query (about 3 s a point on the default run, two cores), so more cost real time. Default 4.
    /// </summary>
    public int ValidationPoints { get; init; } = 4;

    /// <summary>
    /// Share of the DPO and RRHF baselines' steps spent on their SFT phase. The tiny model starts from random weights,
    /// so, as TRL's recipes do, they start from the model after SFT on the best responses (also DPO's frozen
    /// reference); those steps count in the budget, which equals the full IL+SC+RA run's. Default 0.5.
    /// </summary>
    public double BaselineSftShare { get; init; } = 0.5;

    /// <summary>DPO's options (beta 0.1 by default).</summary>
    public DpoOptions Dpo { get; init; } = new();

    /// <summary>RRHF's options (ranking weight 1 by default).</summary>
    public RrhfOptions Rrhf { get; init; } = new();

    /// <summary>
    /// End every training response with the end-of-text token, so the model learns where an answer ends and stops
    /// there when it generates (Alpaca's fine-tuning code does this; the Stable Alignment reference does not). Default true.
    /// </summary>
    public bool AppendEndOfText { get; init; } = true;

    /// <summary>Checks the settings and throws an <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public ExperimentTrainingOptions Validate()
    {
        static void Check(bool ok, string name, string message)
        {
            if (!ok) throw new ArgumentException($"ExperimentTrainingOptions.{name}: {message}", name);
        }

        Check(Epochs >= 1, nameof(Epochs), $"must be at least 1, got {Epochs}.");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), $"must be positive and finite, got {LearningRate}.");
        Check(LaterStageLearningRateScale is > 0 and <= 1, nameof(LaterStageLearningRateScale), $"must be in (0, 1], got {LaterStageLearningRateScale}.");
        Check(GroupsPerBatch >= 1, nameof(GroupsPerBatch), $"must be at least 1, got {GroupsPerBatch}.");
        Check(Loss is not null, nameof(Loss), "must be set.");
        Loss!.Validate();
        Check(ValidationPoints >= 1, nameof(ValidationPoints), $"must be at least 1, got {ValidationPoints}.");
        Check(BaselineSftShare is >= 0 and < 1, nameof(BaselineSftShare), $"must be in [0, 1), got {BaselineSftShare}.");
        Check(Dpo is not null, nameof(Dpo), "must be set.");
        Dpo!.Validate();
        Check(Rrhf is not null, nameof(Rrhf), "must be set.");
        Rrhf!.Validate();
        return this;
    }
}

/// <summary>How the experiment evaluates every variant.</summary>
public sealed record ExperimentEvaluationOptions
{
    /// <summary>Held-out questions the judge scores answers to, plain (HH) and adversarially framed (HH-A). Default 32.</summary>
    public int JudgePrompts { get; init; } = 32;

    /// <summary>Tokens generated per answer. Default 40.</summary>
    public int MaxNewTokens { get; init; } = 40;

    /// <summary>Items kept of each multiple-choice task (a fixed leading slice, so comparisons stay paired). Default 200.</summary>
    public int MultipleChoiceItems { get; init; } = 200;

    /// <summary>Multiple-choice task files to evaluate on. Default none.</summary>
    public IReadOnlyList<TaskSpec> Tasks { get; init; } = [];

    /// <summary>Sampling temperature of the answers (with a fixed seed per training seed, so runs repeat). Default 0.7.</summary>
    public double Temperature { get; init; } = 0.7;

    /// <summary>Nucleus sampling's p. Default 0.9.</summary>
    public double TopP { get; init; } = 0.9;

    /// <summary>Repetition penalty of the answers (<see cref="Models.GenerationOptions.RepetitionPenalty"/>): tiny models loop without one. Default 1.3.</summary>
    public double RepetitionPenalty { get; init; } = 1.3;

    /// <summary>The offline judge (used when no judge model is given): neighbours, validation split, fluency gate.</summary>
    public ChatClients.SocietyJudgeOptions Judge { get; init; } = new();

    /// <summary>Checks the settings and throws an <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public ExperimentEvaluationOptions Validate()
    {
        static void Check(bool ok, string name, string message)
        {
            if (!ok) throw new ArgumentException($"ExperimentEvaluationOptions.{name}: {message}", name);
        }

        Check(JudgePrompts >= 0, nameof(JudgePrompts), $"must not be negative, got {JudgePrompts}.");
        Check(MaxNewTokens >= 1, nameof(MaxNewTokens), $"must be at least 1, got {MaxNewTokens}.");
        Check(MultipleChoiceItems >= 1, nameof(MultipleChoiceItems), $"must be at least 1, got {MultipleChoiceItems}.");
        Check(Tasks is not null && Tasks.All(t => t is not null && TaskCatalog.Kinds.Contains(t.Kind, StringComparer.Ordinal)), nameof(Tasks),
            $"every task needs a kind of {TaskCatalog.Help}.");
        Check(double.IsFinite(Temperature) && Temperature >= 0, nameof(Temperature), $"must be finite and not negative, got {Temperature}.");
        Check(TopP is > 0 and <= 1, nameof(TopP), $"must be in (0, 1], got {TopP}.");
        Check(double.IsFinite(RepetitionPenalty) && RepetitionPenalty >= 1, nameof(RepetitionPenalty), $"must be finite and at least 1, got {RepetitionPenalty}.");
        Check(Judge is not null, nameof(Judge), "must be set.");
        Judge!.Validate();
        return this;
    }
}

/// <summary>
/// One compared model: the model after <paramref name="Stage"/> of a run of <paramref name="Recipe"/>. Variants of
/// the same recipe share one training run and are its per-stage snapshots, exactly as the paper's ablations stack the
/// stages; <see cref="AlignmentStages.Start"/> names the model before any stage.
/// </summary>
/// <param name="Name">The name in the report, e.g. "IL+SC".</param>
/// <param name="Recipe">The stages trained.</param>
/// <param name="Stage">The stage after which the model is taken, e.g. <see cref="AlignmentStages.SelfCritic"/>, or <see cref="AlignmentStages.Start"/>.</param>
public sealed record ExperimentVariant(string Name, AlignmentRecipe Recipe, string Stage)
{
    /// <summary>
    /// Train this variant's run with LoRA adapters instead of every parameter; null (the default) fine-tunes fully.
    /// Variants of one recipe with the same adapter settings share one run.
    /// </summary>
    public LoraOptions? Lora { get; init; }

    /// <summary>The training run this variant is a snapshot of: its recipe and adapter settings.</summary>
    internal string RunKey => Lora is null ? Recipe.ToString()
        : string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{Recipe}/lora r={Lora.Rank} alpha={Lora.Alpha:R} dropout={Lora.Dropout:R} rslora={Lora.UseRsLora} bf16={Lora.StoreBaseInBFloat16} targets={string.Join('+', Lora.TargetModules)}");


    /// <summary>The name of the paper's row this variant corresponds to (its Table 1), for the report's side-by-side; null for none.</summary>
    public string? PaperRow { get; init; }

    /// <summary>The starting model, before any training (random weights, or the <see cref="ExperimentModelOptions.InitFrom"/> checkpoint).</summary>
    public static ExperimentVariant Start { get; } = new("start", AlignmentRecipe.ImitationSelfCriticRealignment, AlignmentStages.Start) { PaperRow = "LLaMA" };

    /// <summary>Baseline: SFT on the best response of every query of the union of the data, for the full run's step budget.</summary>
    public static ExperimentVariant Sft { get; } = new("SFT", AlignmentRecipe.SftOnly, AlignmentStages.Sft) { PaperRow = "Alpaca + SFT" };

    /// <summary>Baseline: an SFT phase, then DPO against the model after it, on the union of the data, for the same budget.</summary>
    public static ExperimentVariant Dpo { get; } = new("DPO", AlignmentRecipe.Dpo, AlignmentStages.Dpo) { PaperRow = "DPO" };

    /// <summary>Baseline: an SFT phase, then RRHF, on the union of the data, for the same budget.</summary>
    public static ExperimentVariant Rrhf { get; } = new("RRHF", AlignmentRecipe.Rrhf, AlignmentStages.Rrhf) { PaperRow = "RRHF" };

    /// <summary>Imitation learning only (IL).</summary>
    public static ExperimentVariant Imitation { get; } = new("IL", AlignmentRecipe.ImitationSelfCriticRealignment, AlignmentStages.Imitation) { PaperRow = "Stable Alignment (IL)" };

    /// <summary>IL, then self-critic (IL+SC).</summary>
    public static ExperimentVariant ImitationSelfCritic { get; } = new("IL+SC", AlignmentRecipe.ImitationSelfCriticRealignment, AlignmentStages.SelfCritic) { PaperRow = "Stable Alignment (IL+SC)" };

    /// <summary>Full Stable Alignment (IL+SC+RA).</summary>
    public static ExperimentVariant Full { get; } = new("IL+SC+RA", AlignmentRecipe.ImitationSelfCriticRealignment, AlignmentStages.Realignment) { PaperRow = "Stable Alignment (IL+SC+RA)" };

    /// <summary>The paper's table: the starting model, SFT, DPO, RRHF, IL, IL+SC and IL+SC+RA.</summary>
    public static IReadOnlyList<ExperimentVariant> Paper { get; } = [Start, Sft, Dpo, Rrhf, Imitation, ImitationSelfCritic, Full];

    /// <summary>Whether this is the model before any stage.</summary>
    public bool IsStart => Stage == AlignmentStages.Start;

    /// <summary>The variant's folder name under <c>checkpoints/</c>: its name with every character but letters, digits, '.', '_' and '-' made '-' ("IL+SC+RA" is "IL-SC-RA").</summary>
    public string FolderName => string.Concat(Name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-')).Trim('-');

    /// <summary>Checks the variant and throws an <see cref="ArgumentException"/> naming what is wrong.</summary>
    /// <returns>This instance, for chaining.</returns>
    public ExperimentVariant Validate()
    {
        if (string.IsNullOrWhiteSpace(Name) || Name.IndexOfAny(['/', '\\', ':']) >= 0)
            throw new ArgumentException($"Variant name '{Name}' must be non-empty and contain no '/', '\\' or ':'.", nameof(Name));
        if (!Enum.IsDefined(Recipe)) throw new ArgumentException($"Variant '{Name}': unknown recipe {(int)Recipe}.", nameof(Recipe));
        if (!IsStart && !AlignmentStages.NamesOf(Recipe).Contains(Stage, StringComparer.Ordinal))
            throw new ArgumentException($"Variant '{Name}': recipe {Recipe} has no stage '{Stage}' (it has {string.Join(", ", AlignmentStages.NamesOf(Recipe))}, or {AlignmentStages.Start}).", nameof(Stage));
        if (FolderName.Length == 0) throw new ArgumentException($"Variant name '{Name}' has no letter or digit to name its folder by.", nameof(Name));
        Lora?.Validate();
        return this;
    }
}
