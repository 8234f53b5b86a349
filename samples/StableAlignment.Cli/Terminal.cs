using System.Globalization;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Experiment;
using StableAlignment.Core.Models;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Cli;

/// <summary>How the host shows the experiment: one progress bar per activity, one summary line per step, one error line with an exit code.</summary>
internal static class Terminal
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static void Rule(string title) => AnsiConsole.Write(new Rule($"[bold]{Markup.Escape(title)}[/]").LeftJustified());

    public static async Task SimulateAsync(StableAlignmentExperiment e, CancellationToken ct)
    {
        var s = await WithProgress(p => e.SimulateAsync(p, ct));
        Done($"{s.Log.Interactions} interactions in {s.Log.CompletedRounds} rounds, {s.Log.RatingFailures} rating failures recorded, stop: {s.Run.StopReason} -> {e.Folder.SandboxLog}");
        if (s.Run.StopReason == SandboxStopReason.BudgetExhausted)
            AnsiConsole.MarkupLine("  [yellow]The token budget is spent:[/] every interaction it paid for is logged; run again with a larger --token-budget to continue.");
    }

    public static async Task BuildDatasetAsync(StableAlignmentExperiment e, CancellationToken ct)
    {
        var s = await e.BuildDatasetAsync(null, ct);
        var table = new Table().AddColumns("kind", "queries", "samples");
        foreach (KindStatistics kind in s.Statistics.PerKind)
            table.AddRow(kind.Kind.ToString(), kind.Queries.ToString(Invariant), kind.Samples.ToString(Invariant));
        AnsiConsole.Write(table);
        Done($"{s.TrainQueries} train / {s.ValidationQueries} validation queries, vocabulary {s.VocabularySize} tokens -> {e.Folder.DatasetDirectory}");
    }

    public static async Task TrainAsync(StableAlignmentExperiment e, CancellationToken ct)
    {
        var s = await WithProgress(p => e.TrainAsync(p, ct));
        foreach (var v in s.Variants)
            Done($"{v.Name}: {v.Steps} steps in {v.Seconds:F0} s, held-out ranking accuracy {v.ValidationRankingAccuracy:P0} -> {v.Checkpoint}");
        foreach (var run in s.Runs)
            Done($"{run.Name} ({run.Recipe}): {run.Steps} steps ({run.SkippedSteps} skipped), {run.TokensPerSecond:F0} tokens/s, peak memory {run.PeakResidentBytes / 1048576} MiB");
    }

    public static async Task EvaluateAsync(StableAlignmentExperiment e, CancellationToken ct) =>
        Done($"{(await WithProgress(p => e.EvaluateAsync(p, ct))).Count} task results -> {e.Folder.EvaluationDirectory}");

    public static async Task ExportAsync(StableAlignmentExperiment e, string variant, ExportFormat format, ExportDType? dtype, string to, CancellationToken ct)
    {
        await WithProgress<bool>(async p =>
        {
            await e.ExportAsync(variant, format, dtype, to, new Reporter<ExportProgress>(x => p.Report(new ExperimentProgress(ExperimentStep.Report, $"export {variant}", x.Done, x.Total))), ct);
            return true;
        });
        Done($"{variant} -> {Path.GetFullPath(to)}");
    }

    public static async Task ReportAsync(StableAlignmentExperiment e, CancellationToken ct)
    {
        AblationReport report = await e.WriteReportAsync(null, ct);
        AnsiConsole.Write(new Panel(new Text(report.SeedTable())).Header("report"));
        Done(e.Folder.Report);
    }

    /// <summary>Runs a step under a live progress display: each activity the step reports gets its own bar.</summary>
    private static async Task<T> WithProgress<T>(Func<IProgress<ExperimentProgress>, Task<T>> step)
    {
        T result = default!;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var bars = new Dictionary<string, ProgressTask>(StringComparer.Ordinal);
                var progress = new Reporter<ExperimentProgress>(p =>
                {
                    lock (bars)
                    {
                        if (!bars.TryGetValue(p.Activity, out var bar)) bars[p.Activity] = bar = ctx.AddTask(Markup.Escape(p.Activity));
                        bar.MaxValue = Math.Max(1, p.Total);
                        bar.Value = p.Done;
                        if (p.Detail is not null) bar.Description = Markup.Escape($"{p.Activity} · {p.Detail}");
                    }
                });
                result = await step(progress);
                lock (bars) foreach (var bar in bars.Values) bar.Value = bar.MaxValue;
            });
        return result;
    }

    private static void Done(string message) => AnsiConsole.MarkupLine($"  [green]✓[/] {Markup.Escape(message)}");

    /// <summary>Reports on the caller's thread; <see cref="Progress{T}"/> would post to the thread pool and reorder events.</summary>
    private sealed class Reporter<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    public const int Usage = 2;

    /// <summary>The exit codes, as <c>--help</c> and the README list them.</summary>
    public const string ExitCodes = "0 done; 1 unexpected error (a bug: rerun with --verbose and report it); 2 bad command line; " +
        "3 missing, unreadable or mismatched input in the run folder; 4 run folder in use by another process; " +
        "5 model server unreachable past --outage-tolerance (run the same command to resume); " +
        "6 model server refused the call or answered garbage (e.g. HTTP 401: check OPENAI_API_KEY); 7 disk full or another write error; " +
        "130 cancelled (completed work is kept).";

    public static void Error(string message) =>
        AnsiConsole.MarkupLineInterpolated(Invariant, $"[red]error:[/] {(message.Length > 1000 ? message[..997] + "..." : message).ReplaceLineEndings(" ")}");

    /// <summary>
    /// Runs a command: what a user can fix prints one line and exits with its documented code; anything else is a
    /// bug and says so. A stack trace only with <c>--verbose</c>.
    /// </summary>
    public static async Task<int> Guarded(bool verbose, Func<Task> action)
    {
        try
        {
            await action();
            return 0;
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]Cancelled.[/] Completed work is kept; run the same command again to resume.");
            return 130;
        }
        catch (Exception e)
        {
            var (code, message) = Describe(e);
            Error(message);
            if (verbose) AnsiConsole.WriteLine(e.ToString());
            return code;
        }
    }

    private static (int Code, string Message) Describe(Exception e) => e switch
    {
        ModelServerUnavailableException => (5, $"{e.Message}. Completed work is kept: run the same command to resume once the server answers."),
        ModelCallRejectedException { IsAuthenticationFailure: true } => (6, $"{e.Message}. Set OPENAI_API_KEY to a key the server accepts."),
        ModelCallException => (6, e.Message),
        RunFolderInUseException => (4, e.Message),
        ArgumentException => (Usage, e.Message),
        ExperimentException or SandboxLogException or InvalidDataException or AlignmentDataException or TaskFormatException
            or System.Text.Json.JsonException or FileNotFoundException or DirectoryNotFoundException or NotSupportedException => (3, e.Message),
        IOException or UnauthorizedAccessException => (7, e.Message),
        _ => (1, $"unexpected {e.GetType().Name}: {e.Message} (this is a bug: rerun with --verbose for the stack trace and report it)"),
    };
}

/// <summary>
/// The library's warnings on the console (retries, stalls, outages, the budget stop), one line each; a warning that
/// repeats within ten seconds is counted instead of printed again. Everything of level Information and above also
/// goes to the run folder's <c>run.log</c>.
/// </summary>
internal sealed class ConsoleWarnings : ILoggerFactory
{
    private readonly Dictionary<string, (DateTime Shown, int Hidden)> _recent = new(StringComparer.Ordinal);

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose()
    {
    }

    private void Write(LogLevel level, string template, string message)
    {
        var now = DateTime.UtcNow;
        lock (_recent)
        {
            int hidden = 0;
            if (_recent.TryGetValue(template, out var seen))
            {
                if (now - seen.Shown < TimeSpan.FromSeconds(10))
                {
                    _recent[template] = seen with { Hidden = seen.Hidden + 1 };
                    return;
                }
                hidden = seen.Hidden;
            }
            _recent[template] = (now, 0);
            string more = hidden == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $" (+{hidden} like it)");
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[{(level >= LogLevel.Error ? "red" : "yellow")}]{(level >= LogLevel.Error ? "error" : "warn")}:[/] {message}{more}");
        }
    }

    private sealed class Logger(ConsoleWarnings sink) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel is >= LogLevel.Warning and < LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            string message = formatter(state, exception);
            string template = state is IEnumerable<KeyValuePair<string, object?>> pairs
                ? pairs.FirstOrDefault(p => p.Key == "{OriginalFormat}").Value as string ?? message : message;
            sink.Write(logLevel, template, message);
        }
    }
}
