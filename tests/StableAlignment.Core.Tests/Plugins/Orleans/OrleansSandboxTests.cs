using StableAlignment.Core.Data;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.Tests.Sandbox;
using StableAlignment.Sandbox.Orleans;

namespace StableAlignment.Core.Tests.Plugins.Orleans;

/// <summary>
/// The Orleans engine against the in-process sandbox, which is the reference: the same seed and options must give the
/// same log file byte for byte, on any number of silos, after a silo is killed mid-round, and after the whole cluster
/// is stopped and started again. Kill and stop points are decided by commit counts, never by time.
/// </summary>
public sealed class OrleansSandboxTests
{
    private const int Grid = 4, Rounds = 3, PerRound = Grid * Grid;

    private static SandboxOptions World => SandboxTestKit.Small(grid: Grid) with { Layout = PersonaLayout.RandomHalfAndHalf };

    private static async Task<string> ReferenceLogAsync(TempFolder dir)
    {
        string path = dir.File("in-process.db");
        await using var sandbox = SandboxTestKit.Offline(World);
        await sandbox.RunAsync(Rounds, path);
        return path;
    }

    /// <param name="sameFile">A log written in one go is the same file byte for byte; a resumed one differs in SQLite's change counter only (as in process).</param>
    private static void AssertSameLog(string expected, string actual, bool sameFile = true)
    {
        var records = SandboxLog.ReadRecords(actual);
        Assert.Equal(Rounds * PerRound, records.Count);
        Assert.Equal(records.Count, records.Select(r => (r.Round, r.AgentId)).Distinct().Count());
        Assert.Equal(SchedulerTests.Canonical(SandboxLog.ReadRecords(expected)), SchedulerTests.Canonical(records));
        if (sameFile) Assert.Equal(File.ReadAllBytes(expected), File.ReadAllBytes(actual));
    }

    [Fact]
    public async Task The_log_and_the_dataset_are_byte_identical_to_the_in_process_sandbox_on_2_3_and_4_silos()
    {
        using var dir = new TempFolder();
        string reference = await ReferenceLogAsync(dir);
        await using var cluster = await OrleansTestClusters.StartAsync(2, dir.File("grains.db"));
        for (int silos = 2; silos <= 4; silos++)
        {
            if (silos > 2) await cluster.StartAdditionalSiloAsync();
            Assert.Equal(silos, cluster.GetActiveSilos().Count());
            string log = dir.File($"orleans-{silos}.db");
            await using var sandbox = OrleansTestClusters.Sandbox(cluster, World);
            var result = await sandbox.RunAsync(Rounds, log);
            Assert.Equal(SandboxStopReason.Completed, result.StopReason);
            AssertSameLog(reference, log);
            // The agents really were spread: interactions ran on more than one silo.
            Assert.True(((OrleansSandbox)sandbox).LastRun!.InteractionsBySilo.Count >= 2, $"{silos} silos: all interactions ran on one");

            // What users take from the log: the reference per-agent JSON Lines and the released-format dataset.
            var expectedJsonl = SandboxLog.ExportJsonLines(reference, dir.File("jsonl-in-process"));
            var actualJsonl = SandboxLog.ExportJsonLines(log, dir.File($"jsonl-{silos}"));
            Assert.Equal(expectedJsonl.Select(Path.GetFileName), actualJsonl.Select(Path.GetFileName));
            Assert.All(expectedJsonl.Zip(actualJsonl), p => Assert.Equal(File.ReadAllBytes(p.First), File.ReadAllBytes(p.Second)));
            await AlignmentDataset.FromInteractions(SandboxLog.ReadRecords(reference)).SaveAsync(dir.File("dataset-in-process.json"));
            await AlignmentDataset.FromInteractions(SandboxLog.ReadRecords(log)).SaveAsync(dir.File($"dataset-{silos}.json"));
            Assert.Equal(File.ReadAllBytes(dir.File("dataset-in-process.json")), File.ReadAllBytes(dir.File($"dataset-{silos}.json")));
        }
    }

    [Fact]
    public async Task A_silo_killed_mid_round_loses_no_interaction_and_records_none_twice()
    {
        using var dir = new TempFolder();
        string reference = await ReferenceLogAsync(dir);
        await using var cluster = await OrleansTestClusters.StartAsync(3, dir.File("grains.db"), callLatency: TimeSpan.FromMilliseconds(5));
        string log = dir.File("orleans.db");
        await using var sandbox = OrleansTestClusters.QuickRetrySandbox(cluster, World);
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var killed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        const int KillAfter = PerRound + PerRound / 2;   // the middle of round 1
        // The committer waits (inside its progress report) until the silo is dead: the kill lands after exactly this
        // many commits, while the agents run ahead into the next rounds.
        var progress = new SyncProgress<SandboxProgress>(p =>
        {
            if (p.InteractionsDone != KillAfter) return;
            reached.SetResult();
            killed.Task.Wait();
        });
        var run = sandbox.RunAsync(Rounds, log, progress);
        await reached.Task;
        // The silo of agent 0: its id is the value a serializer is most likely to lose when the grain comes back elsewhere.
        var victim = OrleansTestClusters.SiloOfAgent(cluster, 0);
        await cluster.KillSiloAsync(victim);
        killed.SetResult();
        var result = await run;

        Assert.Equal(SandboxStopReason.Completed, result.StopReason);
        Assert.Equal(Rounds * PerRound, result.InteractionsInLog);
        AssertSameLog(reference, log);
        Assert.Equal(2, cluster.GetActiveSilos().Count());
    }

    [Fact]
    public async Task A_cluster_stopped_mid_run_and_started_again_resumes_to_the_same_log()
    {
        using var dir = new TempFolder();
        string reference = await ReferenceLogAsync(dir);
        string log = dir.File("orleans.db");
        const int StopAfter = PerRound + 5;
        await using (var cluster = await OrleansTestClusters.StartAsync(2, dir.File("grains.db")))
        {
            using var cts = new CancellationTokenSource();
            await using var sandbox = OrleansTestClusters.Sandbox(cluster, World);
            var progress = new SyncProgress<SandboxProgress>(p =>
            {
                if (p.InteractionsDone == StopAfter) cts.Cancel();
            });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sandbox.RunAsync(Rounds, log, progress, cts.Token));
            // Every silo dies at once, with whatever its grains were still doing.
            foreach (var silo in cluster.Silos.ToList()) await cluster.KillSiloAsync(silo);
        }
        Assert.Equal(StopAfter, SandboxLog.Summarize(log).Interactions);

        await using (var cluster = await OrleansTestClusters.StartAsync(2, dir.File("grains.db")))
        {
            await using var sandbox = OrleansTestClusters.Sandbox(cluster, World);
            var resumed = await sandbox.RunAsync(Rounds, log);
            Assert.Equal(Rounds * PerRound - StopAfter, resumed.InteractionsThisRun);
        }
        AssertSameLog(reference, log, sameFile: false);
    }
}
