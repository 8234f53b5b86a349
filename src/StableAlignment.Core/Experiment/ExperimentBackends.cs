using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Experiment;

/// <summary>
/// What a host plugs into an experiment: real models for the society and the judge, an embedding model, plots and
/// logging. Everything is optional; without them the experiment runs offline on the embedded society, its judge and
/// a hashed bag-of-words embedding, and skips the plots with a note in the report. Plugin packages add themselves
/// with extension methods (for example <c>WithMiniLmEmbeddings()</c> and <c>WithPlots()</c>).
/// </summary>
public sealed record ExperimentBackends
{
    /// <summary>The social agents' model; null uses the offline society. The experiment composes the call policy around it; the host keeps ownership.</summary>
    public IChatClient? Agents { get; init; }

    /// <summary>The observers' model; null uses <see cref="Agents"/>.</summary>
    public IChatClient? Observers { get; init; }

    /// <summary>The judge's model; null uses the offline society's rater. The host keeps ownership.</summary>
    public IChatClient? Judge { get; init; }

    /// <summary>Creates the embedding generator of the agents' memories (the experiment disposes it); null uses <see cref="HashingEmbeddingGenerator"/>.</summary>
    public Func<IEmbeddingGenerator<string, Embedding<float>>>? Embeddings { get; init; }

    /// <summary>
    /// Runs the society; null runs it in this process (<see cref="SandboxFactory"/>). A distributed engine (for example
    /// the <c>StableAlignment.Sandbox.Orleans</c> package's) gives the same log and uses its own hosts' model clients.
    /// </summary>
    public ISandboxEngine? SandboxEngine { get; init; }

    /// <summary>The questions the society answers; null uses the built-in scenario bank.</summary>
    public QuestionSource? Questions { get; init; }

    /// <summary>Draws the plots; null skips them and says so in the report.</summary>
    public IExperimentPlots? Plots { get; init; }

    /// <summary>Receives log messages (retries, the sandbox's rounds); null logs nothing.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }
}

/// <summary>
/// Draws the experiment's figures as image files. The core library draws nothing itself, so it carries no plotting
/// dependency; the <c>StableAlignment.Plots</c> package implements this.
/// </summary>
public interface IExperimentPlots
{
    /// <summary>Draws the dataset's figures (ratings and lengths per kind) into <paramref name="directory"/>.</summary>
    /// <param name="statistics">The dataset's statistics.</param>
    /// <param name="directory">The output folder.</param>
    /// <returns>The files written.</returns>
    IReadOnlyList<string> Dataset(AlignmentDatasetStatistics statistics, string directory);

    /// <summary>Draws the training curves (loss per stage, validation) into <paramref name="directory"/>.</summary>
    /// <param name="history">Every logged step and validation of one run.</param>
    /// <param name="directory">The output folder.</param>
    /// <returns>The files written.</returns>
    IReadOnlyList<string> Training(TrainingHistory history, string directory);

    /// <summary>Draws the society's figures (observer ratings before and after revision) into <paramref name="directory"/>.</summary>
    /// <param name="interactions">The logged interactions.</param>
    /// <param name="directory">The output folder.</param>
    /// <returns>The files written.</returns>
    IReadOnlyList<string> Society(IReadOnlyList<InteractionRecord> interactions, string directory);

    /// <summary>Draws the report's figures (accuracy per variant and task, with intervals) into <paramref name="directory"/>.</summary>
    /// <param name="report">The report.</param>
    /// <param name="directory">The output folder.</param>
    /// <returns>The files written.</returns>
    IReadOnlyList<string> Report(AblationReport report, string directory);
}

/// <summary>The experiment's steps, in order.</summary>
public enum ExperimentStep
{
    /// <summary>Running the society into the log.</summary>
    Simulate,

    /// <summary>Building and splitting the alignment dataset.</summary>
    BuildDataset,

    /// <summary>Training the variants.</summary>
    Train,

    /// <summary>Evaluating the variants.</summary>
    Evaluate,

    /// <summary>Writing the report.</summary>
    Report,
}

/// <summary>A progress report of a running experiment.</summary>
/// <param name="Step">The step.</param>
/// <param name="Activity">What is being done, e.g. "train IL+SC+RA"; the same activity reports again as it advances.</param>
/// <param name="Done">Units done of <paramref name="Total"/> (interactions, optimizer steps, evaluated items).</param>
/// <param name="Total">Units in all.</param>
/// <param name="Detail">A short description of the latest unit, e.g. the stage and the loss; null when none.</param>
public sealed record ExperimentProgress(ExperimentStep Step, string Activity, long Done, long Total, string? Detail = null);
