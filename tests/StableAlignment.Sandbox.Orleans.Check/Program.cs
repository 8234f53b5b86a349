using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Sandbox;
using StableAlignment.Sandbox.Orleans;

// The Orleans engine in real processes (run by .ci/orleans-check):
//   reference LOG GRID ROUNDS                    the in-process sandbox, the reference log
//   silo CLUSTER PORT                            one silo of the PostgreSQL cluster, until killed or SIGTERM
//   client CLUSTER SILOS LOG GRID ROUNDS PAUSES DIR
//                                                the run, once SILOS silos are active; after each of PAUSES commits
//                                                (comma-separated, or -) it writes DIR/paused-N, says where the agents
//                                                are, and waits for DIR/resume-N. The run's log is kept in the
//                                                cluster's database too, so a client with a new LOG resumes it
// Every process runs the same world: the offline society (seed 11) and the hashing embedder.
static SandboxOptions World(string grid) => new()
{
    GridSize = int.Parse(grid, CultureInfo.InvariantCulture), Seed = 11, PeersPerInteraction = 3, MemorySeedSize = 10,
};

// Warnings and errors only: retries after the kill, and Orleans' own view of the dead silo.
static ILoggerFactory Logging() => LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));

static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

switch (args)
{
    case ["reference", var log, var grid, var rounds]:
    {
        var options = World(grid);
        using var client = new OfflineSocietyChatClient(options.Seed).AsBuilder().UseModelCallPolicy().Build();
        await using var sandbox = SandboxFactory.Create(options, new SandboxBackends { AgentClient = client, Embeddings = new HashingEmbeddingGenerator() });
        var result = await sandbox.RunAsync(Int(rounds), log);
        Console.WriteLine(FormattableString.Invariant($"reference: {result.InteractionsInLog} interactions"));
        return 0;
    }
    case ["silo", var cluster, var port]:
    {
        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        using var logging = Logging();
        await OrleansSandboxHost.RunSiloAsync(cluster, new OrleansSandboxSiloOptions(), new OrleansSiloEndpoint(Int(port), Int(port) + 1),
            logging, stop.Token);
        return 0;
    }
    case ["client", var cluster, var silos, var log, var grid, var rounds, var pause, var dir]:
    {
        using var logging = Logging();
        await using var connection = await ConnectWhenActiveAsync(cluster, Int(silos), logging);
        // Replies lost with the killed silo are asked for again after 5 s (the grains answer repeats from storage).
        var run = new OrleansRunOptions { ReplyTimeout = TimeSpan.FromSeconds(5), SharedLog = cluster };
        await using var sandbox = OrleansSandboxFactory.Create(connection.Client, World(grid), run: run, loggerFactory: logging);
        // The kill points are commit counts: the committer stops in its progress report until the script has killed a process.
        var pauses = pause == "-" ? [] : pause.Split(',').Select(Int).ToHashSet();
        var progress = new Reporter(p =>
        {
            if (!pauses.Contains((int)p.InteractionsDone)) return;
            try
            {
                var management = connection.Client.GetGrain<IManagementGrain>(0);
                foreach (var silo in management.GetSimpleGrainStatistics().GetAwaiter().GetResult()
                    .Where(g => g.GrainType.Contains(nameof(AgentGrain), StringComparison.Ordinal)).GroupBy(g => g.SiloAddress))
                    Console.WriteLine(FormattableString.Invariant($"client: at {p.InteractionsDone} commits silo {silo.Key} hosts {silo.Sum(g => g.ActivationCount)} agents"));
            }
            catch (Exception e) when (e is OrleansException or TimeoutException)
            {
                // A silo that was killed may still be listed; the statistics only show the first kill mattered.
                Console.WriteLine(FormattableString.Invariant($"client: at {p.InteractionsDone} commits no grain statistics ({e.GetType().Name})"));
            }
            File.WriteAllText(Path.Combine(dir, FormattableString.Invariant($"paused-{p.InteractionsDone}")), "");
            while (!File.Exists(Path.Combine(dir, FormattableString.Invariant($"resume-{p.InteractionsDone}")))) Thread.Sleep(50);
        });
        var result = await sandbox.RunAsync(Int(rounds), log, progress);
        var records = SandboxLog.ReadRecords(log);
        var stats = ((OrleansSandbox)sandbox).LastRun!;
        Console.WriteLine(FormattableString.Invariant(
            $"client: {result.StopReason}, {records.Count} interactions, {records.Select(r => (r.Round, r.AgentId)).Distinct().Count()} distinct (round, agent), {result.InteractionsInLog - result.InteractionsThisRun} of them logged before this run, {stats.AskedAgain} requests asked again after cluster faults"));
        foreach (var (silo, count) in stats.InteractionsBySilo) Console.WriteLine(FormattableString.Invariant($"client: silo {silo} ran {count} logged interactions"));
        return 0;
    }
    default:
        Console.Error.WriteLine("usage: reference LOG GRID ROUNDS | silo CLUSTER PORT | client CLUSTER SILOS LOG GRID ROUNDS PAUSES DIR");
        return 2;
}

// The silos start beside the client: connect once one has joined, run once all have (so agents spread over them).
static async Task<OrleansSandboxCluster> ConnectWhenActiveAsync(string cluster, int silos, ILoggerFactory logging)
{
    var deadline = DateTime.UtcNow.AddMinutes(2);
    while (true)
    {
        try
        {
            var connection = await OrleansSandboxHost.ConnectAsync(cluster, logging);
            while ((await connection.Client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true)).Count < silos)
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"fewer than {silos} silos joined within 2 minutes");
                await Task.Delay(500);
            }
            return connection;
        }
        catch (Exception e) when (e is not TimeoutException && DateTime.UtcNow < deadline)
        {
            Console.WriteLine($"client: no cluster yet ({e.GetType().Name}); trying again");
            await Task.Delay(1000);
        }
    }
}

/// <summary>Reports on the committer's thread, so the pause holds the commit that triggered it.</summary>
internal sealed class Reporter(Action<SandboxProgress> report) : IProgress<SandboxProgress>
{
    public void Report(SandboxProgress value) => report(value);
}
