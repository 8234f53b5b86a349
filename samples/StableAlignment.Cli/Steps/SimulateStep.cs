using Microsoft.Extensions.AI;
using Spectre.Console;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Cli.Steps;

/// <summary>Step 1: a Sandbox society on a small grid for a few rounds, into the SQLite log (resumable).</summary>
internal static class SimulateStep
{
    public static async Task RunAsync(RunLayout layout, RunSettings settings, string? agentsBackend, string? questionsFile, CancellationToken ct)
    {
        Directory.CreateDirectory(layout.Root);
        var options = new SandboxOptions
        {
            GridSize = settings.GridSize,
            Layout = PersonaLayout.RandomHalfAndHalf,
            Seed = settings.Seed,
        };
        await using ISandbox sandbox = agentsBackend is null && questionsFile is null
            ? SandboxFactory.CreateOffline(options)
            : SandboxFactory.Create(options, Backends(agentsBackend, questionsFile));

        SandboxRunResult result = null!;
        await AnsiConsole.Progress().Columns(Terminal.ProgressColumns).StartAsync(async ctx =>
        {
            var task = ctx.AddTask($"simulate {settings.GridSize}x{settings.GridSize} grid, {settings.Rounds} rounds");
            var progress = new Terminal.SynchronousProgress<SandboxProgress>(p =>
            {
                task.MaxValue = Math.Max(1, p.InteractionsTotal);
                task.Value = p.InteractionsDone;
            });
            result = await sandbox.RunAsync(settings.Rounds, layout.SandboxLog, progress, ct);
            task.Value = task.MaxValue;
        });

        var summary = SandboxLog.Summarize(layout.SandboxLog);
        AnsiConsole.MarkupLineInterpolated(System.Globalization.CultureInfo.InvariantCulture,
            $"  [green]✓[/] {summary.Interactions} interactions in {summary.CompletedRounds} rounds, {summary.RatingFailures} rating failures recorded, stop: {result.StopReason} -> {layout.SandboxLog}");
    }

    private static SandboxBackends Backends(string? agentsBackend, string? questionsFile)
    {
        var offline = new OfflineSocietyChatClient();
        IChatClient agents = agentsBackend is null ? offline : ChatBackends.Create(agentsBackend);
        return new SandboxBackends
        {
            AgentClient = agents,
            Embeddings = new MiniLmEmbeddingGenerator(),
            Questions = questionsFile is null ? QuestionSource.BuiltIn() : QuestionSource.FromFile(RunLayout.Require(questionsFile, "--questions")),
        };
    }
}
