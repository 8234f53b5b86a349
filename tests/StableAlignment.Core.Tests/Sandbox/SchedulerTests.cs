using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.AI;
using StableAlignment.Core.Sandbox;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.ModelCalls;

namespace StableAlignment.Core.Tests.Sandbox;

public class SchedulerTests
{
    internal static string Canonical(IEnumerable<InteractionRecord> records) =>
        string.Join("\n", records.Select(r => JsonSerializer.Serialize(r)));

    [Fact]
    public async Task Calls_in_flight_never_exceed_the_cap_and_reach_it()
    {
        using var dir = new TempFolder();
        var client = new InstrumentedChatClient(new OfflineSocietyChatClient(7), TimeSpan.FromMilliseconds(15));
        await using var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small(), client, calls: SandboxTestKit.Calls with { MaxConcurrentCalls = 3 });
        await sandbox.RunAsync(1, dir.File("log.db"));
        Assert.Equal(3, client.MaxInFlight);
    }

    [Fact]
    public async Task A_higher_cap_is_used_when_there_is_work()
    {
        using var dir = new TempFolder();
        var client = new InstrumentedChatClient(new OfflineSocietyChatClient(7), TimeSpan.FromMilliseconds(15));
        await using var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small(grid: 4), client, calls: SandboxTestKit.Calls with { MaxConcurrentCalls = 12 });
        await sandbox.RunAsync(1, dir.File("log.db"));
        Assert.InRange(client.MaxInFlight, 10, 12);
    }

    /// <summary>Fails the first attempt of every distinct call with the given exception, then answers like the offline society.</summary>
    private sealed class FaultingChatClient(IChatClient inner, Func<Exception> fault, int failuresPerCall) : DelegatingChatClient(inner)
    {
        private readonly ConcurrentDictionary<string, int> _attempts = new();

        public int Faults;

        public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            string id = ModelCallId.Of(options);
            if (_attempts.AddOrUpdate(id, 1, (_, n) => n + 1) <= failuresPerCall)
            {
                Interlocked.Increment(ref Faults);
                throw fault();
            }
            return base.GetResponseAsync(messages, options, cancellationToken);
        }
    }

    [Fact]
    public async Task Transient_faults_are_retried_and_the_log_equals_a_fault_free_run()
    {
        using var dir = new TempFolder();
        var options = SandboxTestKit.Small();
        var faulty = new FaultingChatClient(new OfflineSocietyChatClient(options.Seed),
            () => new HttpRequestException("busy", null, HttpStatusCode.TooManyRequests), failuresPerCall: 2);
        await using (var sandbox = SandboxTestKit.Offline(options, faulty, calls: SandboxTestKit.Calls with { MaxRetries = 3 })) await sandbox.RunAsync(1, dir.File("faulty.db"));
        await using (var sandbox = SandboxTestKit.Offline(options)) await sandbox.RunAsync(1, dir.File("clean.db"));
        Assert.True(faulty.Faults > 100, $"{faulty.Faults} faults");
        Assert.Equal(Canonical(SandboxLog.ReadRecords(dir.File("clean.db"))), Canonical(SandboxLog.ReadRecords(dir.File("faulty.db"))));
    }

    [Fact]
    public async Task Non_transient_faults_fail_the_run_without_retrying_and_keep_a_clean_prefix()
    {
        using var dir = new TempFolder();
        var faulty = new FaultingChatClient(new OfflineSocietyChatClient(7),
            () => new HttpRequestException("bad request", null, HttpStatusCode.BadRequest), failuresPerCall: 1);
        await using var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small(), faulty);
        var ex = await Assert.ThrowsAsync<ModelCallRejectedException>(() => sandbox.RunAsync(1, dir.File("log.db")));
        Assert.Equal(400, ex.Status);
        Assert.IsType<HttpRequestException>(ex.InnerException);
        Assert.Equal(0, SandboxLog.Summarize(dir.File("log.db")).Interactions);
    }

    [Fact]
    public async Task A_call_that_hangs_times_out_and_is_retried()
    {
        using var dir = new TempFolder();
        int hung = 0;
        var hanging = new HangingOnceClient(new OfflineSocietyChatClient(7), () => Interlocked.Increment(ref hung) == 1);
        var options = SandboxTestKit.Small(grid: 2);
        await using var sandbox = SandboxTestKit.Offline(options, hanging, calls: SandboxTestKit.Calls with { CallTimeout = TimeSpan.FromMilliseconds(200) });
        var result = await sandbox.RunAsync(1, dir.File("log.db"));
        Assert.Equal(4, result.InteractionsInLog);
    }

    private sealed class HangingOnceClient(IChatClient inner, Func<bool> hang) : DelegatingChatClient(inner)
    {
        public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            if (hang()) await Task.Delay(Timeout.Infinite, cancellationToken);
            return await base.GetResponseAsync(messages, options, cancellationToken);
        }
    }

    /// <summary>Runs a hook before each call, by call id (e.g. to hold one agent's calls until a condition holds), then answers as the inner client.</summary>
    private sealed class GatedChatClient(IChatClient inner, Func<string, CancellationToken, Task> before) : DelegatingChatClient(inner)
    {
        public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            await before(ModelCallId.Of(options), cancellationToken);
            return await base.GetResponseAsync(messages, options, cancellationToken);
        }
    }

    /// <summary>
    /// A sandbox on <paramref name="client"/> behind the test call policy, charging <paramref name="budget"/>. The gate
    /// sits inside the concurrency limit, so a held call keeps its permit: with fewer permits than agents, the agents
    /// that reach round 1 first could hold them all and starve the call that releases the gate (it happened in CI).
    /// One permit per agent and one more cannot run out, whatever order the threads take.
    /// </summary>
    private static ISandbox WithBudget(SandboxOptions options, IChatClient client, TokenBudget budget) =>
        SandboxFactory.Create(options, new SandboxBackends
        {
            AgentClient = client.AsBuilder()
                .UseModelCallPolicy(SandboxTestKit.Calls with { MaxConcurrentCalls = options.GridSize * options.GridSize + 1 }, budget).Build(),
            Embeddings = new HashingEmbeddingGenerator(64),
        });

    /// <summary>
    /// The budget stop that lost every token: it came before the first commit, while later interactions were already
    /// paid for. Made deterministic by the calls themselves, not by timing: agent 0's first interaction (seq 0) is held
    /// until agent 2's second-round interaction (seq 11) has started, and at that moment the budget is spent. Every
    /// other second-round call is held too, so nothing beyond round 1 starts before the stop. Whatever the threads do,
    /// the stop then precedes every commit, and seq 0..11 were started; all of them must be committed.
    /// </summary>
    [Fact]
    public async Task A_budget_stop_before_the_first_commit_keeps_every_interaction_it_paid_for_and_resumes_to_the_same_log()
    {
        using var dir = new TempFolder();
        var options = SandboxTestKit.Small();
        var budget = new TokenBudget(1_000_000_000);
        var spent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var client = new GatedChatClient(new OfflineSocietyChatClient(options.Seed), async (callId, ct) =>
        {
            if (callId.StartsWith("r1/a2/", StringComparison.Ordinal))
            {
                lock (spent)
                {
                    if (!spent.Task.IsCompleted)
                    {
                        budget.Charge(budget.Limit!.Value, 0);
                        spent.SetResult();
                    }
                }
            }
            else if (callId.StartsWith("r0/a0/", StringComparison.Ordinal) || !callId.StartsWith("r0/", StringComparison.Ordinal))
            {
                await spent.Task.WaitAsync(ct);
            }
        });
        SandboxRunResult stopped;
        await using (var sandbox = WithBudget(options, client, budget)) stopped = await sandbox.RunAsync(3, dir.File("budget.db"));

        Assert.Equal(SandboxStopReason.BudgetExhausted, stopped.StopReason);
        // seq 0..11 were started before the stop; nothing of round 2 was (its agents' round-1 calls were held).
        Assert.InRange(stopped.InteractionsInLog, 12, 18);
        // Nothing paid for is discarded: the tokens the run spent are exactly the tokens of the logged interactions.
        var logged = SandboxLog.Summarize(dir.File("budget.db"));
        Assert.Equal((stopped.TokensIn, stopped.TokensOut), (logged.TokensIn, logged.TokensOut));
        Assert.Equal(stopped.TokensIn, stopped.TokensByParticipant.Values.Sum(v => v.In));

        await AssertResumesToTheFullLog(options, dir, stopped);
    }

    /// <summary>
    /// A budget spent by real usage. With a limit of one token the first answered call exhausts it, before any agent
    /// has finished an interaction, so at most the first round was started: the stop is certain, whatever the scheduling.
    /// </summary>
    [Fact]
    public async Task Token_budget_stops_cleanly_and_the_run_resumes_to_the_same_log()
    {
        using var dir = new TempFolder();
        var options = SandboxTestKit.Small();
        SandboxRunResult stopped;
        await using (var sandbox = SandboxTestKit.Offline(options, calls: SandboxTestKit.Calls with { TokenBudget = 1 }))
            stopped = await sandbox.RunAsync(3, dir.File("budget.db"));
        Assert.Equal(SandboxStopReason.BudgetExhausted, stopped.StopReason);
        Assert.InRange(stopped.InteractionsInLog, 1, 9);
        var logged = SandboxLog.Summarize(dir.File("budget.db"));
        Assert.Equal((stopped.TokensIn, stopped.TokensOut), (logged.TokensIn, logged.TokensOut));
        // Per-participant counts add up to the run's.
        Assert.Equal(stopped.TokensIn, stopped.TokensByParticipant.Values.Sum(v => v.In));
        Assert.Contains("observer:0", stopped.TokensByParticipant.Keys);

        await AssertResumesToTheFullLog(options, dir, stopped);
    }

    private static async Task AssertResumesToTheFullLog(SandboxOptions options, TempFolder dir, SandboxRunResult stopped)
    {
        await using (var sandbox = SandboxTestKit.Offline(options))
        {
            var resumed = await sandbox.RunAsync(3, dir.File("budget.db"));
            Assert.Equal(SandboxStopReason.Completed, resumed.StopReason);
            Assert.Equal(27 - stopped.InteractionsInLog, resumed.InteractionsThisRun);
        }
        await using (var sandbox = SandboxTestKit.Offline(options)) await sandbox.RunAsync(3, dir.File("full.db"));
        Assert.Equal(Canonical(SandboxLog.ReadRecords(dir.File("full.db"))), Canonical(SandboxLog.ReadRecords(dir.File("budget.db"))));
        // Logged token counts are per interaction and identical whatever the interruptions.
        Assert.Equal(SandboxLog.Summarize(dir.File("full.db")).TokensIn, SandboxLog.Summarize(dir.File("budget.db")).TokensIn);
    }

    /// <summary>
    /// One interaction whose call fails for good must not take down those before it. Deterministic: agent 4's calls
    /// wait until agents 0-3 have each made a call (so their interactions have started), then fail with HTTP 400.
    /// </summary>
    [Fact]
    public async Task A_call_that_fails_for_good_lets_the_interactions_before_it_finish_and_commit()
    {
        using var dir = new TempFolder();
        var options = SandboxTestKit.Small();
        var started = new HashSet<string>(StringComparer.Ordinal);
        var allStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var client = new GatedChatClient(new OfflineSocietyChatClient(options.Seed), async (callId, ct) =>
        {
            string centre = string.Join('/', callId.Split('/').Take(2));
            lock (started)
            {
                started.Add(centre);
                if (new[] { "r0/a0", "r0/a1", "r0/a2", "r0/a3" }.All(started.Contains)) allStarted.TrySetResult();
            }
            if (centre == "r0/a4")
            {
                await allStarted.Task.WaitAsync(ct);
                throw new HttpRequestException("bad request", null, HttpStatusCode.BadRequest);
            }
        });
        await using (var sandbox = SandboxTestKit.Offline(options, client))
        {
            var ex = await Assert.ThrowsAsync<ModelCallRejectedException>(() => sandbox.RunAsync(1, dir.File("log.db")));
            Assert.Equal(400, ex.Status);
        }
        Assert.Equal(4, SandboxLog.Summarize(dir.File("log.db")).Interactions);

        await using (var sandbox = SandboxTestKit.Offline(options)) await sandbox.RunAsync(1, dir.File("log.db"));
        await using (var sandbox = SandboxTestKit.Offline(options)) await sandbox.RunAsync(1, dir.File("full.db"));
        Assert.Equal(Canonical(SandboxLog.ReadRecords(dir.File("full.db"))), Canonical(SandboxLog.ReadRecords(dir.File("log.db"))));
    }

    [Fact]
    public async Task Progress_reports_reach_the_total()
    {
        using var dir = new TempFolder();
        var reports = new ConcurrentQueue<SandboxProgress>();
        await using var sandbox = SandboxTestKit.Offline(SandboxTestKit.Small());
        await sandbox.RunAsync(2, dir.File("log.db"), new SyncProgress<SandboxProgress>(reports.Enqueue));
        Assert.Equal(18, reports.Count);
        Assert.Equal(Enumerable.Range(1, 18).Select(i => (long)i), reports.Select(r => r.InteractionsDone));
        Assert.All(reports, r => Assert.Equal(18, r.InteractionsTotal));
        Assert.Equal(2, reports.Last().Round);
        Assert.True(reports.Last().TokensIn > 0);
    }
}

