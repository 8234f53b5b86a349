using System.Globalization;
using Spectre.Console;
using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Experiment;
using StableAlignment.Core.Models;

namespace StableAlignment.Cli;

/// <summary>How the host shows the experiment: one progress bar per activity, one summary line per step, one error line.</summary>
internal static class Terminal
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static void Rule(string title) => AnsiConsole.Write(new Rule($"[bold]{Markup.Escape(title)}[/]").LeftJustified());

    public static async Task SimulateAsync(StableAlignmentExperiment e, CancellationToken ct)
    {
        var s = await WithProgress(p => e.SimulateAsync(p, ct));
        Done($"{s.Log.Interactions} interactions in {s.Log.CompletedRounds} rounds, {s.Log.RatingFailures} rating failures recorded, stop: {s.Run.StopReason} -> {e.Folder.SandboxLog}");
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

    public static async Task EvaluateAsync(StableAlignmentExperiment e, CancellationToken ct)
    {
        var results = await WithProgress(p => e.EvaluateAsync(p, ct));
        Done($"{results.Count} task results -> {e.Folder.EvaluationDirectory}");
    }

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

    /// <summary>One clear message and a non-zero exit code for what a user can fix; a stack trace only for real bugs.</summary>
    public static async Task<int> Guarded(Func<Task> action)
    {
        try
        {
            await action();
            return 0;
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]Cancelled.[/] Completed work is kept; run the same command again to resume the simulation.");
            return 130;
        }
        catch (Exception e) when (e is ExperimentException or ArgumentException or IOException or UnauthorizedAccessException or InvalidDataException
            or AlignmentDataException or TaskFormatException or NotSupportedException or System.Text.Json.JsonException or HttpRequestException)
        {
            AnsiConsole.MarkupLineInterpolated(Invariant, $"[red]error:[/] {e.Message}");
            return 1;
        }
    }
}
