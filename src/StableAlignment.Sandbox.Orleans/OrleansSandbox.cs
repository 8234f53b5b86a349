using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;
using Orleans.Storage;
using StableAlignment.Core.Sandbox;
using StableHash = StableAlignment.Core.Sandbox.StableHash;

namespace StableAlignment.Sandbox.Orleans;

/// <summary>
/// The Orleans engine's coordinator, behind <see cref="ISandbox"/>: it schedules rounds exactly as the in-process
/// sandbox does (the core's <see cref="SandboxPlan"/>: question order, seeded peers, memory seeds) and runs each
/// interaction in its centre agent's grain. Interaction (round r, agent a) starts once a's and its peers' round r - 1
/// have returned, so every prompt is what a strict round-by-round run sends; replies are committed to the core's SQLite
/// log in schedule order, one transaction each, keyed by (round, agent), and first, with
/// <see cref="OrleansRunOptions.SharedLog"/>, to the cluster's copy of the log in PostgreSQL. A reply lost with a silo is asked for again
/// (the grain is reactivated on another silo from storage), and only the coordinator writes the log, so no interaction
/// is lost or recorded twice; with the offline society the log is byte-identical to the in-process sandbox's.
/// </summary>
internal sealed partial class OrleansSandbox : ISandbox
{
    private static readonly Counter<long> AskedAgain = SandboxTelemetry.Meter.CreateCounter<long>(
        "sandbox.interactions_asked_again", description: "Interactions asked for again after a cluster fault (a silo died, a reply was lost or late).");

    private readonly IGrainFactory _grains;
    private readonly SandboxPlan _plan;
    private readonly SandboxSchedule _schedule;
    private readonly OrleansRunOptions _run;
    private readonly ILogger _logger;
    private readonly ClientAgent[] _agents;
    private readonly ClientObserver[] _observers;
    private readonly OneRunAtATime _oneRun = new();

    public OrleansSandbox(IGrainFactory grains, SandboxOptions options, QuestionSource questions,
        IReadOnlyDictionary<string, IReadOnlyList<QuestionAnswer>> memorySeeds, SandboxSchedule? schedule, OrleansRunOptions? run,
        ILoggerFactory? loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(grains);
        _run = (run ?? new OrleansRunOptions()).Validate();
        _grains = grains;
        _plan = new SandboxPlan(options, questions, memorySeeds);
        _schedule = (schedule ?? new SandboxSchedule()).Validate();
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<OrleansSandbox>();
        Options = options;
        _agents = [.. _plan.ActiveIds.Select(id => new ClientAgent(this, id, SandboxWorld.PositionOf(id, options.GridSize), _plan.Personas[id]!))];
        _observers = [.. Enumerable.Range(0, options.ObserverCount).Select(i => new ClientObserver(this, i))];
    }

    /// <inheritdoc />
    public SandboxOptions Options { get; }

    /// <inheritdoc />
    /// <remarks>Their <see cref="IAgent.Memory"/> is what the log says they remember (without embeddings); they answer once a run has set up their grains.</remarks>
    public IReadOnlyList<IAgent> Agents => _agents;

    /// <inheritdoc />
    public IReadOnlyList<IObserverAgent> Observers => _observers;

    /// <summary>The key of the current or last run's grains.</summary>
    internal string? RunKey { get; private set; }

    /// <summary>Per-silo counts and redone interactions of the last run.</summary>
    internal OrleansRunStatistics? LastRun { get; private set; }

    /// <inheritdoc />
    public IReadOnlyList<int> Neighbours(int agentId) =>
        _plan.Neighbourhoods.TryGetValue(agentId, out var n) ? n
            : throw new ArgumentOutOfRangeException(nameof(agentId), agentId, "No active agent has this id.");

    /// <inheritdoc />
    public async Task<SandboxRunResult> RunAsync(int rounds, string logPath, IProgress<SandboxProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rounds);
        ArgumentException.ThrowIfNullOrWhiteSpace(logPath);
        using (_oneRun.Enter()) return await RunOnceAsync(rounds, logPath, progress, cancellationToken).ConfigureAwait(false);
    }

    private async Task<SandboxRunResult> RunOnceAsync(int rounds, string logPath, IProgress<SandboxProgress>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        using var activity = SandboxTelemetry.Source.StartActivity("sandbox.run");
        int perRound = _plan.AgentsPerRound;
        string worldJson = WorldOptionsJson();
        var model = await WithRetriesAsync(() => _grains.GetGrain<ISiloInfoGrain>(0).ModelsAsync(worldJson), cancellationToken).ConfigureAwait(false);
        string fingerprint = _plan.Fingerprint(model.Embeddings, model.Agents, model.Observers);
        using var log = SandboxLogWriter.Open(logPath, fingerprint, perRound);
        // With a shared log the cluster's database holds the run too, so a coordinator on another machine resumes it.
        await using var shared = _run.SharedLog is { } database
            ? await PostgresRunLog.OpenAsync(database, _run.RunName ?? StableHash.Sha256Hex(fingerprint)[..24], fingerprint, perRound, log, cancellationToken)
                .ConfigureAwait(false)
            : null;
        string run = RunKey = StableHash.Sha256Hex(fingerprint + "\n" + Path.GetFullPath(logPath))[..24];
        await WithRetriesAsync(() => _grains.GetGrain<IWorldGrain>(run).SetAsync(worldJson), cancellationToken).ConfigureAwait(false);
        await ResetAgentsAsync(run, log, model, cancellationToken).ConfigureAwait(false);

        long start = log.Count;
        long total = (long)rounds * perRound;
        LogStart(_logger, perRound, rounds, start, logPath);
        var state = new RunState(this, log, shared, run, start, total, progress, cancellationToken);
        if (start < total && perRound > 0)
        {
            var loops = Enumerable.Range(0, perRound).Select(ordinal => Task.Run(() => state.AgentLoopAsync(ordinal), CancellationToken.None)).ToList();
            var committer = Task.Run(state.CommitLoopAsync, CancellationToken.None);
            await Task.WhenAll(loops.Append(committer)).ConfigureAwait(false);
        }
        state.Dispose();
        LastRun = state.Statistics();
        foreach (var (silo, count) in LastRun.InteractionsBySilo) LogSilo(_logger, silo, count);

        if (state.Failure is { } failure) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        cancellationToken.ThrowIfCancellationRequested();
        var reason = log.Count >= total ? SandboxStopReason.Completed : SandboxStopReason.BudgetExhausted;
        LogEnd(_logger, reason, log.Count - start, log.Count, LastRun.AskedAgain, clock.Elapsed.TotalSeconds);
        return state.Result(reason, clock.Elapsed);
    }

    /// <summary>The options as the silos receive them; a lossy round trip would make them build another world, so it is refused here.</summary>
    private string WorldOptionsJson()
    {
        string json = JsonSerializer.Serialize(Options, WorldJson.Options);
        var back = JsonSerializer.Deserialize<SandboxOptions>(json, WorldJson.Options);
        if (back is null || back.Fingerprint([]) != Options.Fingerprint([]))
            throw new NotSupportedException("These SandboxOptions do not survive the JSON round trip to the silos (a custom prompt or persona type?).");
        return json;
    }

    /// <summary>Memories = the persona-matched seed (round -1) + every logged update, so a resumed run sees what an uninterrupted one did.</summary>
    private async Task ResetAgentsAsync(string run, SandboxLogWriter log, SiloModels model, CancellationToken cancellationToken)
    {
        var updates = log.MemoryUpdates().ToLookup(u => u.AgentId, u => u.Entry);
        int perRound = _plan.AgentsPerRound;
        await Task.WhenAll(_agents.Select(async (agent, ordinal) =>
        {
            // The first round the log lacks for this agent (the log is a prefix of the schedule).
            int next = (int)((log.Count - ordinal + perRound - 1) / perRound);
            var memory = _plan.MemorySeed(agent.Id).Select(p => new MemoryEntry(p.Question, p.Answer, -1)).Concat(updates[agent.Id]).ToList();
            agent.Mirror.Clear();
            foreach (var entry in memory) agent.Mirror.Add(entry);
            var reset = new AgentReset(run, agent.Id, agent.Persona, [.. memory.Select(m => new StoredMemory(m.Question, m.Answer, m.Round, []))], next);
            var siloModel = await WithRetriesAsync(() => AgentGrain(run, agent.Id).ResetAsync(reset), cancellationToken).ConfigureAwait(false);
            if (siloModel != model)
                throw new InvalidOperationException(
                    $"The silos run with different models ({model}; and {siloModel}); every silo of a run must use the same ones.");
        })).ConfigureAwait(false);
    }

    internal IAgentGrain AgentGrain(string run, int id) => _grains.GetGrain<IAgentGrain>(global::StableAlignment.Sandbox.Orleans.AgentGrain.AgentKey(run, id));

    internal IObserverGrain ObserverGrain(string run, int id) => _grains.GetGrain<IObserverGrain>(global::StableAlignment.Sandbox.Orleans.AgentGrain.AgentKey(run, id));

    internal string CurrentRun() => RunKey ?? throw new InvalidOperationException("The agents' grains are set up by RunAsync; run the sandbox first.");

    /// <summary>Whether an exception is the cluster's (a silo died, a connection or reply was lost), not the model's or a bug.</summary>
    internal static bool IsClusterFault(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is OrleansMessageRejectionException or ConnectionFailedException or GatewayTooBusyException or ClientNotAvailableException
                or TimeoutException or InconsistentStateException or Npgsql.NpgsqlException { IsTransient: true }) return true;
        }
        return exception is AggregateException { InnerExceptions.Count: > 0 } all && all.InnerExceptions.All(IsClusterFault);
    }

    /// <summary>Calls the cluster until it answers: cluster faults are retried with capped backoff, anything else is thrown.</summary>
    internal async Task<T> WithRetriesAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken, Action? onRetry = null)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                // Orleans never fails a client's request whose reply died with a silo, so the wait is bounded here; the
                // grains answer a repeated request from what they stored, so asking again redoes nothing.
                return await call().WaitAsync(_run.ReplyTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (attempt < _run.MaxAttempts && !cancellationToken.IsCancellationRequested && IsClusterFault(ex))
            {
                onRetry?.Invoke();
                LogRetry(_logger, attempt, ex.GetType().Name, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 50 * (1 << Math.Min(attempt, 6)))), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private Task<bool> WithRetriesAsync(Func<Task> call, CancellationToken cancellationToken) =>
        WithRetriesAsync(async () =>
        {
            await call().ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>The mutable state of one run.</summary>
    private sealed class RunState : IDisposable
    {
        private readonly OrleansSandbox _s;
        private readonly SandboxLogWriter _log;
        private readonly PostgresRunLog? _shared;
        private readonly string _run;
        private readonly InteractionSlots<InteractionReply> _slots;
        private readonly IProgress<SandboxProgress>? _progress;
        private readonly CancellationToken _userToken;
        private readonly CancellationTokenSource _cts;
        private readonly ConcurrentDictionary<string, long> _bySilo = new(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<string, long[]> _byParticipant = new(StringComparer.Ordinal);
        private long _tokensIn, _tokensOut, _ratingFailures, _askedAgain;
        private int _budgetStop;
        private Exception? _failure;

        public RunState(OrleansSandbox sandbox, SandboxLogWriter log, PostgresRunLog? shared, string run, long start, long total,
            IProgress<SandboxProgress>? progress, CancellationToken ct)
        {
            _s = sandbox;
            _log = log;
            _shared = shared;
            _run = run;
            _slots = new InteractionSlots<InteractionReply>(start, total, Math.Max(1, sandbox._plan.AgentsPerRound));
            _progress = progress;
            _userToken = ct;
            _cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        }

        public Exception? Failure => _failure;

        /// <summary>Completes when agent <paramref name="agentId"/>'s round <paramref name="round"/> has returned (its memory holds it).</summary>
        private Task Returned(int agentId, int round, CancellationToken ct) =>
            round < 0 ? Task.CompletedTask : _slots.ReturnedAsync(_s._plan.SequenceOf(round, agentId), ct);

        public async Task AgentLoopAsync(int ordinal)
        {
            int id = _s._plan.ActiveIds[ordinal];
            var ct = _cts.Token;
            for (long round = _slots.FirstRound(ordinal); round * _slots.PerRound + ordinal < _slots.Total; round++)
            {
                long seq = round * _slots.PerRound + ordinal;
                try
                {
                    await _slots.GateAsync(round, _s._schedule.MaxRoundsAhead, ct).ConfigureAwait(false);
                    int r = (int)round;
                    int[] peers = _s._plan.PeersOf(id, r);
                    await Task.WhenAll(peers.Select(p => Returned(p, r - 1, ct))).ConfigureAwait(false);
                    if (Volatile.Read(ref _budgetStop) == 1)
                    {
                        _slots.Skip(seq);
                        return;
                    }
                    var request = new InteractionRequest(r, _s._plan.QuestionFor(r, ordinal), peers);
                    var reply = await _s.WithRetriesAsync(() => _s.AgentGrain(_run, id).InteractAsync(request), ct, () =>
                    {
                        Interlocked.Increment(ref _askedAgain);
                        AskedAgain.Add(1);
                    }).ConfigureAwait(false);
                    if (reply.BudgetExhausted)
                    {
                        // A clean stop, as in process: start nothing new, commit what is in flight up to this gap.
                        if (Interlocked.Exchange(ref _budgetStop, 1) == 0) LogBudget(_s._logger, reply.Silo, _log.Count);
                        _slots.Skip(seq);
                        return;
                    }
                    Account(reply);
                    _slots.Complete(seq, reply);
                }
                catch (OperationCanceledException) when (!_userToken.IsCancellationRequested && !_cts.IsCancellationRequested)
                {
                    // An agent this interaction depends on was skipped (budget stop): skip too, without stopping the others.
                    _slots.Skip(seq);
                    return;
                }
                catch (Exception ex)
                {
                    Fail(ex);
                    _slots.Skip(seq);
                    return;
                }
            }
        }

        private void Account(InteractionReply reply)
        {
            Interlocked.Add(ref _tokensIn, reply.TokensIn);
            Interlocked.Add(ref _tokensOut, reply.TokensOut);
            foreach (var p in reply.Participants)
            {
                var counters = _byParticipant.GetOrAdd(p.Participant, _ => new long[2]);
                Interlocked.Add(ref counters[0], p.In);
                Interlocked.Add(ref counters[1], p.Out);
            }
        }

        public async Task CommitLoopAsync()
        {
            if (await _slots.CommitInOrderAsync(CommitAsync, Committed, _cts.Token).ConfigureAwait(false) is { } failure) Fail(failure);
            if (_log.Count < _slots.Total) _cts.Cancel();
        }

        private async ValueTask CommitAsync(long seq, InteractionReply reply)
        {
            var record = reply.Record();
            var update = reply.MemoryUpdate is { } m ? new MemoryEntry(m.Question, m.Answer, m.Round) : null;
            // The cluster's copy first: a local row is then always in it, and a commit asked again is a no-op there.
            if (_shared is not null)
                await _s.WithRetriesAsync(() => _shared.CommitAsync(seq, record, update, reply.TokensIn, reply.TokensOut, _cts.Token), _cts.Token).ConfigureAwait(false);
            _log.Commit(seq, record, update, reply.TokensIn, reply.TokensOut);
            if (update is not null) _s._agents[(int)(seq % _slots.PerRound)].Mirror.Add(update);
            Interlocked.Add(ref _ratingFailures, record.FailedRatings());
            _bySilo.AddOrUpdate(reply.Silo, 1, (_, n) => n + 1);
            SandboxTelemetry.Interactions.Add(1, new KeyValuePair<string, object?>("silo", reply.Silo));
        }

        private void Committed(long seq, int? round)
        {
            if (round is int r) LogRound(_s._logger, r, _log.Count);
            _progress?.Report(new SandboxProgress((int)(_log.Count / _slots.PerRound), _log.Count, _slots.Total, 0,
                Interlocked.Read(ref _ratingFailures), Interlocked.Read(ref _tokensIn), Interlocked.Read(ref _tokensOut)));
        }

        private void Fail(Exception ex)
        {
            if (ex is not OperationCanceledException) Interlocked.CompareExchange(ref _failure, ex, null);
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        public OrleansRunStatistics Statistics() => new(
            _bySilo.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            Interlocked.Read(ref _askedAgain));

        public SandboxRunResult Result(SandboxStopReason reason, TimeSpan elapsed) => new()
        {
            StopReason = reason,
            InteractionsThisRun = _log.Count - _slots.Start,
            InteractionsInLog = _log.Count,
            RatingFailures = Interlocked.Read(ref _ratingFailures),
            TokensIn = Interlocked.Read(ref _tokensIn),
            TokensOut = Interlocked.Read(ref _tokensOut),
            TokensByParticipant = _byParticipant.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                .ToDictionary(kv => kv.Key, kv => (Interlocked.Read(ref kv.Value[0]), Interlocked.Read(ref kv.Value[1])), StringComparer.Ordinal),
            Elapsed = elapsed,
        };

        public void Dispose() => _cts.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Orleans sandbox run: {Agents} agents, {Rounds} rounds, resuming after {Start} logged interactions in {LogPath}")]
    private static partial void LogStart(ILogger logger, int agents, int rounds, long start, string logPath);

    [LoggerMessage(Level = LogLevel.Information, Message = "Round {Round} logged ({Interactions} interactions in the log)")]
    private static partial void LogRound(ILogger logger, int round, long interactions);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster fault on attempt {Attempt} ({Exception}: {Message}); asking again")]
    private static partial void LogRetry(ILogger logger, int attempt, string exception, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Token budget of silo {Silo} reached; stopping cleanly with {Interactions} interactions in the log")]
    private static partial void LogBudget(ILogger logger, string silo, long interactions);

    [LoggerMessage(Level = LogLevel.Information, Message = "Silo {Silo}: {Interactions} logged interactions this run")]
    private static partial void LogSilo(ILogger logger, string silo, long interactions);

    [LoggerMessage(Level = LogLevel.Information, Message = "Orleans sandbox run ended ({Reason}): {Done} interactions this run, {InLog} in the log, {AskedAgain} requests asked again after cluster faults, {Seconds:F1} s")]
    private static partial void LogEnd(ILogger logger, SandboxStopReason reason, long done, long inLog, long askedAgain, double seconds);
}

/// <summary>Where a run's logged interactions ran, and how many interaction requests were asked again after a cluster fault.</summary>
internal sealed record OrleansRunStatistics(IReadOnlyDictionary<string, long> InteractionsBySilo, long AskedAgain);

/// <summary>An agent as the client sees it: its grain answers, and its memory is what the log holds.</summary>
internal sealed class ClientAgent(OrleansSandbox sandbox, int id, GridPosition position, string persona) : IAgent
{
    public int Id { get; } = id;

    public GridPosition Position { get; } = position;

    public string Persona { get; } = persona;

    internal AgentMemory Mirror { get; } = new();

    public AgentMemory Memory => Mirror;

    public Task<string> DraftAsync(string question, InteractionContext context, CancellationToken cancellationToken = default) =>
        sandbox.AgentGrain(sandbox.CurrentRun(), Id).DraftAsync(question, context.Round, context.CentreAgentId, context.Pass).WaitAsync(cancellationToken);

    public async Task<RatingOutcome> GiveFeedbackAsync(string question, string answer, InteractionContext context, CancellationToken cancellationToken = default)
    {
        var reply = await sandbox.AgentGrain(sandbox.CurrentRun(), Id).GiveFeedbackAsync(question, answer, context.Round, context.CentreAgentId, context.Pass)
            .WaitAsync(cancellationToken).ConfigureAwait(false);
        return JsonSerializer.Deserialize<RatingOutcome>(reply.Json, SandboxLog.RecordJson)!;
    }

    public Task<string> ReviseAsync(string question, string answer, IReadOnlyList<PeerFeedback> feedback, InteractionContext context,
        CancellationToken cancellationToken = default) =>
        sandbox.AgentGrain(sandbox.CurrentRun(), Id).ReviseAsync(question, answer, JsonSerializer.Serialize(feedback, SandboxLog.RecordJson),
            context.Round, context.CentreAgentId, context.Pass).WaitAsync(cancellationToken);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"agent {Id} ({Persona})");
}

/// <summary>An observer as the client sees it: a stateless worker grain answers.</summary>
internal sealed class ClientObserver(OrleansSandbox sandbox, int id) : IObserverAgent
{
    public int Id { get; } = id;

    public async Task<ObserverScore> ScoreAsync(string question, string answer, InteractionContext context, CancellationToken cancellationToken = default)
    {
        var reply = await sandbox.ObserverGrain(sandbox.CurrentRun(), Id).ScoreAsync(question, answer, context.Round, context.CentreAgentId, context.Pass)
            .WaitAsync(cancellationToken).ConfigureAwait(false);
        return JsonSerializer.Deserialize<ObserverScore>(reply.Json, SandboxLog.RecordJson)!;
    }
}
