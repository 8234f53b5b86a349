using System.Text.Json;
using System.Text.Json.Serialization;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Models;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Experiment;

/// <summary>What <see cref="StableAlignmentExperiment.SimulateAsync"/> did.</summary>
/// <param name="Run">This call's run.</param>
/// <param name="Log">The whole log afterwards.</param>
public sealed record SimulationSummary(SandboxRunResult Run, SandboxLogSummary Log);

/// <summary>What <see cref="StableAlignmentExperiment.BuildDatasetAsync"/> built.</summary>
/// <param name="TrainQueries">Distinct queries in the training set.</param>
/// <param name="ValidationQueries">Distinct queries held out.</param>
/// <param name="VocabularySize">Tokens of the compact vocabulary built from the training set.</param>
/// <param name="Statistics">Counts, ratings and lengths of the whole dataset.</param>
public sealed record DatasetSummary(int TrainQueries, int ValidationQueries, int VocabularySize, AlignmentDatasetStatistics Statistics);

/// <summary>One trained variant, as <c>training.json</c> records it.</summary>
/// <param name="Name">The variant.</param>
/// <param name="Checkpoint">Its checkpoint folder, relative to the run folder.</param>
/// <param name="Steps">Optimizer steps of its run when it was taken.</param>
/// <param name="Seconds">Seconds of its run when it was taken.</param>
/// <param name="ValidationRankingAccuracy">Held-out ranking accuracy when it was taken.</param>
public sealed record TrainedVariant(string Name, string Checkpoint, int Steps, double Seconds, double? ValidationRankingAccuracy)
{
    /// <summary>The training seed it was trained with.</summary>
    public int Seed { get; init; }
}

/// <summary>One training run: a recipe, trained once, whose stage snapshots are variants.</summary>
/// <param name="Name">The run's name: its last variant.</param>
/// <param name="Recipe">The recipe.</param>
/// <param name="Metrics">Its metrics folder, relative to the run folder.</param>
/// <param name="Steps">Optimizer steps taken.</param>
/// <param name="SkippedSteps">Steps skipped for non-finite values.</param>
/// <param name="TokensPerSecond">Training throughput.</param>
public sealed record TrainedRun(string Name, AlignmentRecipe Recipe, string Metrics, int Steps, int SkippedSteps, double TokensPerSecond)
{
    /// <summary>The LoRA settings the run trained with; null for full fine-tuning.</summary>
    public LoraOptions? Lora { get; init; }

    /// <summary>Parameters the optimizer trained (the adapters' only, with LoRA).</summary>
    public long TrainableParameters { get; init; }

    /// <summary>All parameters of the model, adapters included.</summary>
    public long Parameters { get; init; }

    /// <summary>Peak resident memory of the process over the run's stages (<see cref="TrainingReport.PeakResidentBytes"/>); 0 in summaries written before it was recorded.</summary>
    public long PeakResidentBytes { get; init; }
}

/// <summary>
/// <c>training.json</c> of one training seed: everything later steps need from training, so evaluation scores held-out
/// queries exactly as training validated on them without calling back into training code.
/// </summary>
/// <param name="Loss">The objective's options.</param>
/// <param name="Batches">How each kind of data, and the held-out queries, were batched.</param>
/// <param name="Variants">The trained variants, in the report's row order.</param>
/// <param name="Runs">The training runs.</param>
public sealed record TrainingSummary(ContrastivePreferenceOptions Loss, AlignmentBatchRecipe Batches, IReadOnlyList<TrainedVariant> Variants,
    IReadOnlyList<TrainedRun> Runs)
{
    /// <summary>
    /// The training run's id: a hash of everything that decided the weights. Every checkpoint folder records the id of
    /// the run that wrote it (<see cref="RunFolder.TrainingRunFile"/>); evaluation refuses checkpoints of another run.
    /// Null in files written before ids existed.
    /// </summary>
    public string? RunId { get; init; }

    /// <summary>The training seed (model weights, batch order, answer sampling).</summary>
    public int Seed { get; init; }

    /// <summary>Optimizer steps every trained variant's run was given: those of the full IL+SC+RA run.</summary>
    public int StepBudget { get; init; }

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    internal static async Task<T> ReadAsync<T>(string path, string producedBy, CancellationToken cancellationToken)
    {
        await using var stream = File.OpenRead(RunFolder.Require(path, producedBy));
        try
        {
            return await JsonSerializer.DeserializeAsync<T>(stream, Json, cancellationToken).ConfigureAwait(false)
                ?? throw new ExperimentException($"'{path}' is empty: run the {producedBy} step again.");
        }
        catch (JsonException e)
        {
            throw new ExperimentException($"'{path}' is not a valid {typeof(T).Name} ({e.Message}); run the {producedBy} step again.", e);
        }
    }

    internal static Task WriteAsync<T>(string path, T value, CancellationToken cancellationToken) =>
        File.WriteAllTextAsync(path, JsonSerializer.Serialize(value, Json), cancellationToken);
}

/// <summary>What <see cref="StableAlignmentExperiment.EvaluateAsync"/> wrote beside the per-item files of one training seed.</summary>
/// <param name="Judged">The judge summaries of every variant and task.</param>
public sealed record EvaluationSummary(IReadOnlyList<JudgeSummary> Judged)
{
    /// <summary>The training run whose checkpoints were evaluated (<see cref="TrainingSummary.RunId"/>); null in older files.</summary>
    public string? TrainingRunId { get; init; }

    /// <summary>The judge scores of every variant and task, prompt by prompt (for the paired tests).</summary>
    public IReadOnlyList<JudgeItemScores> Scores { get; init; } = [];

    /// <summary>The judge's model id (the offline judge's, or the judge model's).</summary>
    public string? Judge { get; init; }

    /// <summary>The offline judge's validation, when it was the judge.</summary>
    public SocietyJudgeValidation? JudgeValidation { get; init; }
}
