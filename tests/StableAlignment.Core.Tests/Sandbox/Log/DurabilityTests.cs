using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.AI;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.ChatClients;

namespace StableAlignment.Core.Tests.Sandbox;

public class DurabilityTests
{
    [Fact]
    public async Task Same_seed_gives_byte_identical_logs_whatever_the_concurrency()
    {
        using var dir = new TempFolder();
        var options = SandboxTestKit.Small() with { Layout = PersonaLayout.RandomHalfAndHalf };
        await using (var s = SandboxTestKit.Offline(options, calls: SandboxTestKit.Calls with { MaxConcurrentCalls = 1 })) await s.RunAsync(3, dir.File("a.db"));
        await using (var s = SandboxTestKit.Offline(options, calls: SandboxTestKit.Calls with { MaxConcurrentCalls = 32 }, schedule: new SandboxSchedule { MaxRoundsAhead = 0 })) await s.RunAsync(3, dir.File("b.db"));
        await using (var s = SandboxTestKit.Offline(options with { Seed = 8 })) await s.RunAsync(3, dir.File("c.db"));
        Assert.False(File.Exists(dir.File("a.db-wal")), "the WAL is checkpointed into the log when the run ends");
        Assert.Equal(File.ReadAllBytes(dir.File("a.db")), File.ReadAllBytes(dir.File("b.db")));
        Assert.NotEqual(File.ReadAllBytes(dir.File("a.db")), File.ReadAllBytes(dir.File("c.db")));
    }

    [Fact]
    public async Task Resume_after_cancellation_mid_round_continues_exactly()
    {
        using var dir = new TempFolder();
        var options = SandboxTestKit.Small();
        using var cts = new CancellationTokenSource();
        var slow = new InstrumentedChatClient(new OfflineSocietyChatClient(options.Seed), TimeSpan.FromMilliseconds(2));
        await using (var s = SandboxTestKit.Offline(options, slow))
        {
            var progress = new SyncProgress<SandboxProgress>(p =>
            {
                if (p.InteractionsDone >= 13) cts.Cancel();
            });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => s.RunAsync(3, dir.File("log.db"), progress, cts.Token));
        }
        long kept = SandboxLog.Summarize(dir.File("log.db")).Interactions;
        Assert.Equal(13, kept); // cancelled from the progress report of the 13th commit: mid-round 1
        await using (var s = SandboxTestKit.Offline(options))
        {
            var resumed = await s.RunAsync(3, dir.File("log.db"));
            Assert.Equal(27 - kept, resumed.InteractionsThisRun);
        }
        await using (var s = SandboxTestKit.Offline(options)) await s.RunAsync(3, dir.File("full.db"));
        var records = SandboxLog.ReadRecords(dir.File("log.db"));
        Assert.Equal(27, records.Select(r => (r.Round, r.AgentId)).Distinct().Count());
        Assert.Equal(SchedulerTests.Canonical(SandboxLog.ReadRecords(dir.File("full.db"))), SchedulerTests.Canonical(records));
    }

    [Fact]
    public async Task Resuming_with_different_options_is_refused_by_name()
    {
        using var dir = new TempFolder();
        await using (var s = SandboxTestKit.Offline(SandboxTestKit.Small())) await s.RunAsync(1, dir.File("log.db"));
        await using var other = SandboxTestKit.Offline(SandboxTestKit.Small() with { PeersPerInteraction = 2 });
        var ex = await Assert.ThrowsAsync<SandboxLogException>(() => other.RunAsync(2, dir.File("log.db")));
        Assert.Contains("PeersPerInteraction", ex.Message, StringComparison.Ordinal);
        // Changing only concurrency is fine, and extending the run resumes it.
        await using var wider = SandboxTestKit.Offline(SandboxTestKit.Small(), calls: SandboxTestKit.Calls with { MaxConcurrentCalls = 2 });
        Assert.Equal(9, (await wider.RunAsync(2, dir.File("log.db"))).InteractionsThisRun);
    }

    [Fact]
    public async Task Recorded_responses_replay_offline_to_the_same_log()
    {
        using var dir = new TempFolder();
        var options = SandboxTestKit.Small(grid: 2);
        using (var recorder = new RecordReplayChatClient(dir.File("replay.db"), ReplayMode.Record, new OfflineSocietyChatClient(options.Seed)))
        await using (var s = SandboxTestKit.Offline(options, recorder))
            await s.RunAsync(2, dir.File("recorded.db"));
        var countingInner = new ScriptedChatClient((_, _, _) => throw new InvalidOperationException("must not be called"));
        using (var replayer = new RecordReplayChatClient(dir.File("replay.db"), ReplayMode.Replay))
        await using (var s = SandboxTestKit.Offline(options, replayer))
            await s.RunAsync(2, dir.File("replayed.db"));
        Assert.Equal(File.ReadAllBytes(dir.File("recorded.db")), File.ReadAllBytes(dir.File("replayed.db")));

        // A call that was never recorded fails loudly instead of inventing an answer.
        using var strict = new RecordReplayChatClient(dir.File("replay.db"), ReplayMode.Replay);
        await Assert.ThrowsAsync<KeyNotFoundException>(() => strict.GetResponseAsync([new ChatMessage(ChatRole.User, "unseen")]));
        Assert.Equal(0, countingInner.Calls);
    }

    [Fact]
    public void Replay_keys_are_stable_and_depend_on_content()
    {
        List<ChatMessage> messages = [new(ChatRole.System, "sys"), new(ChatRole.User, "Question: q\nAnswer:")];
        var options = new ChatOptions { Temperature = 1f, MaxOutputTokens = 256, AdditionalProperties = new() { ["stable_alignment.call_id"] = "r0/a1/p0/draft/1/t1" } };
        string key = RecordReplayChatClient.KeyOf(messages, options);
        // Pinned, and computed independently (SHA-256 of the documented canonical text, outside .NET): a change here
        // would orphan every recording made so far.
        Assert.Equal("183b641dded37a388575decc98f489ac2644a0370362cc7afe192b660d4a9d54", key);
        Assert.Equal(key, RecordReplayChatClient.KeyOf([.. messages], options));
        Assert.NotEqual(key, RecordReplayChatClient.KeyOf([messages[0], new(ChatRole.User, "Question: q2\nAnswer:")], options));
        Assert.NotEqual(key, RecordReplayChatClient.KeyOf(messages, new ChatOptions { Temperature = 1f, MaxOutputTokens = 256 }));
    }

    private static string WorkerPath()
    {
        var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string configuration = tfm.Parent!.Name;
        string path = Path.GetFullPath(Path.Combine(tfm.FullName, "..", "..", "..", "..", "StableAlignment.Sandbox.Worker", "bin", configuration, tfm.Name,
            "StableAlignment.Sandbox.Worker.dll"));
        Assert.True(File.Exists(path), $"The worker process was not built at {path}; build tests/StableAlignment.Core.Tests (it references the worker).");
        return path;
    }

    private static Process StartWorker(string log, int rounds, int grid, int delayMs)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { WorkerPath(), log, rounds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            grid.ToString(System.Globalization.CultureInfo.InvariantCulture), delayMs.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(arg);
        return Process.Start(start)!;
    }

    private static async Task<string> WaitAsync(Process process)
    {
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        // A guard against a hung worker, not a speed goal.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"worker exited with {process.ExitCode}: {await error}");
        return await output;
    }

    private static long CountRows(string log)
    {
        if (!File.Exists(log)) return 0;
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = log, Pooling = false }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE name = 'interactions'";
        if ((long)cmd.ExecuteScalar()! == 0) return 0;
        cmd.CommandText = "SELECT COUNT(*) FROM interactions";
        return (long)cmd.ExecuteScalar()!;
    }

    [Fact]
    public async Task A_killed_run_resumes_with_no_interaction_lost_or_duplicated()
    {
        using var dir = new TempFolder();
        string log = dir.File("killed.db");
        const int Rounds = 4, Grid = 4, Total = Rounds * Grid * Grid;
        using (var worker = StartWorker(log, Rounds, Grid, delayMs: 40))
        {
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (CountRows(log) < 1 && !worker.HasExited && DateTime.UtcNow < deadline) await Task.Delay(20);
            Assert.False(worker.HasExited, "the worker finished before it could be killed; slow it down");
            worker.Kill(entireProcessTree: true);
            await worker.WaitForExitAsync();
        }
        long afterKill = CountRows(log);
        Assert.InRange(afterKill, 1, Total - 1);

        using (var resume = StartWorker(log, Rounds, Grid, delayMs: 0)) await WaitAsync(resume);
        using (var full = StartWorker(dir.File("full.db"), Rounds, Grid, delayMs: 0)) await WaitAsync(full);

        var records = SandboxLog.ReadRecords(log);
        Assert.Equal(Total, records.Count);
        Assert.Equal(Total, records.Select(r => (r.Round, r.AgentId)).Distinct().Count());
        Assert.Equal(Enumerable.Range(0, Rounds).SelectMany(r => Enumerable.Range(0, Grid * Grid).Select(a => (r, a))),
            records.Select(r => (r.Round, r.AgentId)));
        Assert.Equal(SchedulerTests.Canonical(SandboxLog.ReadRecords(dir.File("full.db"))), SchedulerTests.Canonical(records));
    }
}
