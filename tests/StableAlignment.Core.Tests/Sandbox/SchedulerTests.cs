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
        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => sandbox.RunAsync(1, dir.File("log.db")));
        Assert.Equal(HttpStatusCode.BadRequest, ex.StatusCode);
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

    [Fact]
    public async Task Token_budget_stops_cleanly_and_the_run_resumes_to_the_same_log()
    {
        using var dir = new TempFolder();
        var options = SandboxTestKit.Small();
        SandboxRunResult stopped;
        await using (var sandbox = SandboxTestKit.Offline(options, calls: SandboxTestKit.Calls with { TokenBudget = 8_000 }))
            stopped = await sandbox.RunAsync(3, dir.File("budget.db"));
        Assert.Equal(SandboxStopReason.BudgetExhausted, stopped.StopReason);
        Assert.InRange(stopped.InteractionsInLog, 1, 26);
        Assert.True(stopped.TokensIn + stopped.TokensOut >= 8_000);
        // Per-participant counts add up to the run's.
        Assert.Equal(stopped.TokensIn, stopped.TokensByParticipant.Values.Sum(v => v.In));
        Assert.Contains("observer:0", stopped.TokensByParticipant.Keys);

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

