using Microsoft.Extensions.AI;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Core.Experiment;

public sealed partial class StableAlignmentExperiment
{
    /// <summary>
    /// Step 1: runs the society for <see cref="ExperimentOptions.Rounds"/> rounds into <see cref="RunFolder.SandboxLog"/>,
    /// resuming an interrupted log, then draws the society's figures when plots are plugged in.
    /// </summary>
    /// <param name="progress">Receives one report per logged interaction.</param>
    /// <param name="cancellationToken">Stops the run; everything logged stays and a later call resumes.</param>
    /// <returns>What the run did and what the log holds.</returns>
    public async Task<SimulationSummary> SimulateAsync(IProgress<ExperimentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var step = EnterStep();
        var world = Options.SeededSandbox;
        var budget = new TokenBudget(Options.Calls.TokenBudget);
        using var agents = WithPolicy(Backends.Agents ?? new OfflineSocietyChatClient(world.Seed), budget);
        using var observers = Backends.Observers is null ? null : WithPolicy(Backends.Observers, budget);
        using var embeddings = Backends.Embeddings?.Invoke() ?? new HashingEmbeddingGenerator();
        var backends = new SandboxBackends
        {
            AgentClient = agents,
            ObserverClient = observers,
            Embeddings = embeddings,
            Questions = Backends.Questions ?? QuestionSource.BuiltIn(),
        };

        string activity = $"simulate {world.GridSize}x{world.GridSize} grid, {Options.Rounds} rounds";
        SandboxRunResult run;
        await using (var sandbox = Backends.SandboxEngine?.Create(world, backends, loggerFactory: LoggerFactory)
            ?? SandboxFactory.Create(world, backends, loggerFactory: LoggerFactory))
        {
            var relay = new Relay<SandboxProgress>(p => progress?.Report(
                new ExperimentProgress(ExperimentStep.Simulate, activity, p.InteractionsDone, p.InteractionsTotal)));
            run = await sandbox.RunAsync(Options.Rounds, Folder.SandboxLog, relay, cancellationToken).ConfigureAwait(false);
        }
        if (Backends.Plots is { } plots) plots.Society(SandboxLog.ReadRecords(Folder.SandboxLog), Folder.PlotsDirectory);
        return new SimulationSummary(run, SandboxLog.Summarize(Folder.SandboxLog));
    }
}
