using Spectre.Console;

namespace StableAlignment.Cli;

/// <summary>Console presentation shared by the steps.</summary>
internal static class Terminal
{
    public static ProgressColumn[] ProgressColumns { get; } =
        [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn()];

    public static void Step(string title) => AnsiConsole.Write(new Rule($"[bold]{Markup.Escape(title)}[/]").LeftJustified());

    /// <summary>
    /// Reports on the caller's thread. <see cref="Progress{T}"/> posts to the thread pool, so events could arrive out
    /// of order or after the work ends; training also snapshots the model from its events, which must happen in step.
    /// </summary>
    public sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
