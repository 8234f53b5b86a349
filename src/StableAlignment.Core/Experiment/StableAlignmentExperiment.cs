using System.Globalization;
using Microsoft.Extensions.AI;
using Microsoft.ML.Tokenizers;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Models;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Experiment;

/// <summary>
/// The paper's experiment as one object: simulate a society, build the alignment dataset, train the SFT baseline and
/// Stable Alignment's stages, evaluate every variant and write a report in the shape of the paper's table.
/// </summary>
/// <remarks>
/// Each step reads the previous step's files from the <see cref="RunFolder"/> and writes its own, so any step can run
/// alone, on your own data, and a run interrupted between steps continues where it stopped. Simulation resumes an
/// interrupted log. Long steps report through <see cref="IProgress{T}"/> and stop at a <see cref="CancellationToken"/>.
/// </remarks>
/// <example>
/// <code>
/// var experiment = new StableAlignmentExperiment(ExperimentOptions.Quick, "run");
/// string report = await experiment.RunAsync();
/// </code>
/// </example>
public sealed partial class StableAlignmentExperiment
{
    /// <summary>Creates an experiment; nothing runs until a step is called.</summary>
    /// <param name="options">The settings; validated here.</param>
    /// <param name="runDirectory">The run folder every step reads and writes.</param>
    /// <param name="backends">Models, embeddings and plots to plug in; null runs offline without plots.</param>
    public StableAlignmentExperiment(ExperimentOptions options, string runDirectory, ExperimentBackends? backends = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options.Validate();
        Folder = new RunFolder(runDirectory);
        Backends = backends ?? new ExperimentBackends();
    }

    /// <summary>The validated settings.</summary>
    public ExperimentOptions Options { get; }

    /// <summary>The run folder.</summary>
    public RunFolder Folder { get; }

    /// <summary>What the host plugged in.</summary>
    public ExperimentBackends Backends { get; }

    /// <summary>
    /// Runs every step: simulate (skipped when <see cref="ExperimentOptions.ReleasedDataset"/> is set), build the
    /// dataset, train, evaluate, report.
    /// </summary>
    /// <param name="progress">Receives progress of every step.</param>
    /// <param name="cancellationToken">Stops the run; completed work stays in the run folder.</param>
    /// <returns>The path of <c>report.md</c>.</returns>
    public async Task<string> RunAsync(IProgress<ExperimentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var step = EnterStep();
        if (Options.ReleasedDataset is null) await SimulateAsync(progress, cancellationToken).ConfigureAwait(false);
        await BuildDatasetAsync(progress, cancellationToken).ConfigureAwait(false);
        await TrainAsync(progress, cancellationToken).ConfigureAwait(false);
        await EvaluateAsync(progress, cancellationToken).ConfigureAwait(false);
        await WriteReportAsync(progress, cancellationToken).ConfigureAwait(false);
        return Folder.Report;
    }

    /// <summary>The variants of each training run (one recipe, one adapter setting), runs in order of first appearance.</summary>
    private IEnumerable<IGrouping<string, ExperimentVariant>> Runs() => Options.Variants.GroupBy(v => v.RunKey, StringComparer.Ordinal);

    /// <summary>The design the report compares: the starting model, the baselines, and the stages of the first of the paper's recipes.</summary>
    private AblationDesign Design()
    {
        var variants = Options.Variants;
        var method = variants.Where(v => !v.IsStart && !AlignmentStages.IsBaseline(v.Recipe)).GroupBy(v => v.RunKey, StringComparer.Ordinal).First();
        var stages = method.Where(v => !v.IsStart).OrderBy(v => AlignmentStages.NamesOf(v.Recipe).ToList().IndexOf(v.Stage)).Select(v => v.Name).ToList();
        return new AblationDesign([.. variants.Select(v => v.Name)], [.. variants.Where(v => AlignmentStages.IsBaseline(v.Recipe) && !v.IsStart).Select(v => v.Name)], stages)
        {
            Start = variants.FirstOrDefault(v => v.IsStart)?.Name,
            PaperRows = variants.Where(v => v.PaperRow is not null).ToDictionary(v => v.Name, v => v.PaperRow!, StringComparer.Ordinal),
            PlainJudgeTask = PlainJudgeTask,
            AdversarialJudgeTask = AdversarialJudgeTask,
        };
    }

    /// <summary>The task names of the judged answers to plain and to adversarially framed prompts.</summary>
    private const string PlainJudgeTask = "hh", AdversarialJudgeTask = "hh-a";

    /// <summary>Every training seed's index, seed and folder.</summary>
    private IEnumerable<(int Index, int Seed, RunFolder Folder)> TrainingSeeds() =>
        Enumerable.Range(0, Options.Seeds).Select(i => (i, Options.TrainingSeed(i), Folder.ForSeed(i, Options.TrainingSeed(i))));

    /// <summary>A model client behind the experiment's call policy; disposing the result leaves <paramref name="inner"/> to its owner.</summary>
    private IChatClient WithPolicy(IChatClient inner, TokenBudget budget) =>
        new NonDisposingChatClient(inner).AsBuilder().UseModelCallPolicy(Options.Calls, budget, LoggerFactory).Build();

    private RunFolderLock? _lock;
    private RunLogFile? _log;
    private int _steps;

    /// <summary>The components' logger factory: the run folder's log file (and the host's factory) while a step runs.</summary>
    private Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory => (Microsoft.Extensions.Logging.ILoggerFactory?)_log ?? Backends.LoggerFactory;

    /// <summary>
    /// Enters a step: the first (outermost) one takes the run folder's lock, before anything is read or any model is
    /// called, and opens its log file; leaving the last one releases both.
    /// </summary>
    /// <exception cref="RunFolderInUseException">Another process is running a step in the folder.</exception>
    private StepScope EnterStep()
    {
        if (_steps++ == 0)
        {
            try
            {
                _lock = RunFolderLock.Acquire(Folder);
            }
            catch
            {
                _steps--;
                throw;
            }
            _log = RunLogFile.Open(Folder.LogFile, Backends.LoggerFactory);
        }
        return new StepScope(this);
    }

    /// <summary>Leaves a step entered with <see cref="EnterStep"/>.</summary>
    private sealed class StepScope(StableAlignmentExperiment experiment) : IDisposable
    {
        public void Dispose()
        {
            if (--experiment._steps > 0) return;
            experiment._log?.Dispose();
            experiment._log = null;
            experiment._lock?.Dispose();
            experiment._lock = null;
        }
    }

    /// <summary>Ends a pipeline without disposing the client beneath it, which belongs to the host.</summary>
    private sealed class NonDisposingChatClient(IChatClient inner) : IChatClient
    {
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            inner.GetResponseAsync(messages, options, cancellationToken);

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) =>
            inner.GetStreamingResponseAsync(messages, options, cancellationToken);

        public object? GetService(Type serviceType, object? serviceKey = null) => inner.GetService(serviceType, serviceKey);

        public void Dispose()
        {
        }
    }

    private static string Count(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Reports synchronously on the caller's thread, so events arrive in order and before the work goes on.</summary>
    private sealed class Relay<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
