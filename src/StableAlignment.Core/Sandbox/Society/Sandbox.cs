using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StableAlignment.Core.ModelCalls;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// The model clients and data a sandbox runs on. The clients are called as given: compose the call policy into them
/// (<see cref="ModelCallChatClientBuilderExtensions.UseModelCallPolicy"/>). When a client's pipeline holds a
/// <see cref="TokenBudget"/>, the sandbox starts no new interaction once it is exhausted and stops cleanly.
/// </summary>
public sealed record SandboxBackends
{
    /// <summary>The client of the social agents.</summary>
    public required IChatClient AgentClient { get; init; }

    /// <summary>The client of the observers (usually a stronger model); <see langword="null"/> = <see cref="AgentClient"/>.</summary>
    public IChatClient? ObserverClient { get; init; }

    /// <summary>Embeds questions for memory retrieval (for example the MiniLM plugin's generator, or <see cref="HashingEmbeddingGenerator"/>).</summary>
    public required IEmbeddingGenerator<string, Embedding<float>> Embeddings { get; init; }

    /// <summary>The question pool.</summary>
    public QuestionSource Questions { get; init; } = QuestionSource.BuiltIn();

    /// <summary>Persona label to the question-answer pairs its agents' memories are seeded from; default: the built-in bank's.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<QuestionAnswer>> MemorySeeds { get; init; } = ScenarioBank.Shared.MemorySeeds;
}

/// <summary>
/// The sandbox: a grid of social agents running Back-Scatter interactions, logged durably to SQLite.
/// Create one with <see cref="SandboxFactory"/>.
/// </summary>
/// <remarks>
/// Scheduling: each agent runs its rounds in order and all agents run concurrently, pipelined across rounds (up to
/// <see cref="SandboxSchedule.MaxRoundsAhead"/>), while the model calls share the pipeline's cap. Memory entries are tagged with
/// their round and a peer waits for the other agent's previous round, so every prompt is exactly what a strict
/// round-by-round run would send. Interactions are committed in schedule order, so the log is always a prefix of the
/// schedule: resuming continues at the first missing interaction.
/// </remarks>
internal sealed partial class Sandbox : ISandbox
{
    private readonly SandboxBackends _backends;
    private readonly IDisposable? _owned;
    private readonly ILogger _logger;
    private readonly SandboxSchedule _schedule;
    private readonly ModelCallLedger _calls;
    private readonly TokenBudget[] _budgets;
    private readonly AgentRuntime _runtime;
    private readonly SocialAgent[] _agents;
    private readonly ObserverAgent[] _observers;
    private readonly Dictionary<int, int> _ordinalById;
    private readonly Dictionary<int, int[]> _neighbourhoods;
    private readonly int[] _activeIds;
    private readonly SandboxPlan _plan;
    private readonly string? _agentModel;
    private readonly string? _observerModel;
    private readonly OneRunAtATime _oneRun = new();

    internal Sandbox(SandboxOptions options, SandboxBackends backends, SandboxSchedule? schedule, ILoggerFactory? loggerFactory, IDisposable? owned)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(backends);
        _plan = new SandboxPlan(options, backends.Questions, backends.MemorySeeds);
        _schedule = (schedule ?? new SandboxSchedule()).Validate();
        Options = options;
        _backends = backends;
        _owned = owned;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<Sandbox>();
        _calls = new ModelCallLedger(options);
        _budgets = [.. new[] { backends.AgentClient, backends.ObserverClient }.OfType<IChatClient>()
            .Select(c => c.GetService<TokenBudget>()).OfType<TokenBudget>().Distinct()];
        _runtime = new AgentRuntime(options, _calls, new EmbeddingCache(backends.Embeddings));
        var personas = _plan.Personas;
        _agents = [.. personas.Select((p, id) => (p, id)).Where(x => x.p is not null)
            .Select(x => new SocialAgent(x.id, SandboxWorld.PositionOf(x.id, options.GridSize), x.p!, backends.AgentClient, _runtime))];
        _activeIds = _plan.ActiveIds;
        _ordinalById = _agents.Select((a, i) => (a.Id, i)).ToDictionary(x => x.Id, x => x.i);
        _observers = [.. Enumerable.Range(0, options.ObserverCount).Select(i => new ObserverAgent(i, backends.ObserverClient ?? backends.AgentClient, _runtime))];
        _neighbourhoods = _plan.Neighbourhoods;
        _agentModel = ModelIdentity.ModelId(backends.AgentClient);
        _observerModel = ModelIdentity.ModelId(backends.ObserverClient ?? backends.AgentClient);
    }

    /// <inheritdoc />
    public SandboxOptions Options { get; }

    /// <inheritdoc />
    public IReadOnlyList<IAgent> Agents => _agents;

    /// <inheritdoc />
    public IReadOnlyList<IObserverAgent> Observers => _observers;

    /// <inheritdoc />
    public IReadOnlyList<int> Neighbours(int agentId) =>
        _neighbourhoods.TryGetValue(agentId, out var n) ? n
            : throw new ArgumentOutOfRangeException(nameof(agentId), agentId, "No active agent has this id.");

    /// <summary>The question agent number <paramref name="ordinal"/> (in id order) answers in <paramref name="round"/>.</summary>
    internal string QuestionFor(int round, int ordinal) => _plan.QuestionFor(round, ordinal);

    /// <inheritdoc />
    public async Task<SandboxRunResult> RunAsync(int rounds, string logPath, IProgress<SandboxProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rounds);
        ArgumentException.ThrowIfNullOrWhiteSpace(logPath);
        using (_oneRun.Enter()) return await RunOnceAsync(rounds, logPath, progress, cancellationToken).ConfigureAwait(false);
    }

    private async Task<SandboxRunResult> RunOnceAsync(int rounds, string logPath, IProgress<SandboxProgress>? progress,
        CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        _calls.Reset();
        using var activity = SandboxTelemetry.Source.StartActivity("sandbox.run");
        int agentsPerRound = _agents.Length;
        using var log = SandboxLogWriter.Open(logPath, Fingerprint(), agentsPerRound);
        long start = log.Count;
        long total = (long)rounds * agentsPerRound;
        await RestoreMemoriesAsync(log, cancellationToken).ConfigureAwait(false);
        LogStart(_logger, agentsPerRound, rounds, start, logPath);
        if (start >= total || agentsPerRound == 0) return Result(SandboxStopReason.Completed, 0, log.Count, 0, clock.Elapsed);

        var run = new RunState(this, log, start, total, progress, cancellationToken);
        var loops = _agents.Select((_, ordinal) => Task.Run(() => run.AgentLoopAsync(ordinal), CancellationToken.None)).ToList();
        var committer = Task.Run(run.CommitLoopAsync, CancellationToken.None);
        await Task.WhenAll(loops.Append(committer)).ConfigureAwait(false);
        run.Dispose();

        long done = log.Count - start;
        if (run.Failure is { } failure) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        cancellationToken.ThrowIfCancellationRequested();
        var reason = log.Count >= total ? SandboxStopReason.Completed : SandboxStopReason.BudgetExhausted;
        LogEnd(_logger, reason, done, log.Count, clock.Elapsed.TotalSeconds);
        return Result(reason, done, log.Count, run.RatingFailures, clock.Elapsed);
    }

    private string Fingerprint() => _plan.Fingerprint(_backends.Embeddings.GetService<EmbeddingGeneratorMetadata>(),
        ModelIdentity.Describe(_backends.AgentClient), ModelIdentity.Describe(_backends.ObserverClient ?? _backends.AgentClient));

    private SandboxRunResult Result(SandboxStopReason reason, long done, long inLog, long failures, TimeSpan elapsed) => new()
    {
        StopReason = reason,
        InteractionsThisRun = done,
        InteractionsInLog = inLog,
        RatingFailures = failures,
        TokensIn = _calls.TokensIn,
        TokensOut = _calls.TokensOut,
        TokensByParticipant = _calls.UsageByParticipant(),
        Elapsed = elapsed,
    };

    /// <summary>Memories = the persona-matched seed (round -1) + every logged update, so a resumed run sees what an uninterrupted one did.</summary>
    private async Task RestoreMemoriesAsync(SandboxLogWriter log, CancellationToken cancellationToken)
    {
        var seeds = new List<(SocialAgent Agent, QuestionAnswer Pair)>();
        foreach (var agent in _agents)
        {
            agent.Memory.Clear();
            seeds.AddRange(_plan.MemorySeed(agent.Id).Select(p => (agent, p)));
        }
        var updates = log.MemoryUpdates();
        await _runtime.Embeddings.WarmAsync(seeds.Select(s => s.Pair.Question).Concat(updates.Select(u => u.Entry.Question))
            .Concat(_backends.Questions.Questions), cancellationToken).ConfigureAwait(false);
        foreach (var (agent, pair) in seeds)
        {
            agent.Memory.Add(new MemoryEntry(pair.Question, pair.Answer, -1)
            { Embedding = await _runtime.Embeddings.GetAsync(pair.Question, cancellationToken).ConfigureAwait(false) });
        }
        foreach (var (agentId, entry) in updates)
        {
            _agents[_ordinalById[agentId]].Memory.Add(entry with
            { Embedding = await _runtime.Embeddings.GetAsync(entry.Question, cancellationToken).ConfigureAwait(false) });
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _owned?.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>The mutable state of one <see cref="RunAsync"/> call.</summary>
    private sealed class RunState : IDisposable
    {
        private readonly Sandbox _s;
        private readonly SandboxLogWriter _log;
        private readonly InteractionSlots<Outcome> _slots;
        private readonly IProgress<SandboxProgress>? _progress;
        private readonly CancellationTokenSource _cts;
        private readonly CancellationToken _userToken;
        private readonly Lock _starting = new();
        private long _ratingFailures;
        private long _highestStarted;
        private long _stopAfter = -1;
        private bool _failed;
        private Exception? _failure;

        public RunState(Sandbox sandbox, SandboxLogWriter log, long start, long total, IProgress<SandboxProgress>? progress, CancellationToken ct)
        {
            _s = sandbox;
            _log = log;
            _slots = new InteractionSlots<Outcome>(start, total, sandbox._agents.Length);
            _progress = progress;
            _userToken = ct;
            _cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            _highestStarted = start - 1;
        }

        public Exception? Failure => _failure;

        public long RatingFailures => Interlocked.Read(ref _ratingFailures);

        private sealed record Outcome(InteractionRecord Record, MemoryEntry? MemoryUpdate, long TokensIn, long TokensOut);

        private Task WaitAgentRound(int agentId, int round, CancellationToken ct) =>
            round < 0 ? Task.CompletedTask : _slots.ReturnedAsync((long)round * _slots.PerRound + _s._ordinalById[agentId], ct);

        public async Task AgentLoopAsync(int ordinal)
        {
            var agent = _s._agents[ordinal];
            var ct = _cts.Token;
            for (long round = _slots.FirstRound(ordinal); round * _slots.PerRound + ordinal < _slots.Total; round++)
            {
                long seq = round * _slots.PerRound + ordinal;
                try
                {
                    await _slots.GateAsync(round, _s._schedule.MaxRoundsAhead, ct).ConfigureAwait(false);
                    if (!MayStart(seq))
                    {
                        _slots.Skip(seq);
                        return;
                    }
                    _slots.Complete(seq, await InteractAsync(agent, ordinal, (int)round, ct).ConfigureAwait(false));
                }
                catch (OperationCanceledException) when (!_userToken.IsCancellationRequested && !_cts.IsCancellationRequested)
                {
                    // A peer this interaction depends on was skipped (budget stop): skip too, without stopping the others.
                    _slots.Skip(seq);
                    return;
                }
                catch (Exception ex)
                {
                    // The committer throws this failure when it reaches this interaction; those before it still commit.
                    if (ex is not OperationCanceledException)
                    {
                        _slots.Fault(seq, ex);
                        Fail(ex);
                    }
                    _slots.Skip(seq);
                    return;
                }
            }
        }

        /// <summary>
        /// Whether interaction <paramref name="seq"/> may start. After a failure nothing new starts. Once the budget is
        /// exhausted, only the interactions below the highest one already started do: they fill the gaps, so everything
        /// that was started (and paid for) can be committed as part of a prefix of the schedule.
        /// </summary>
        private bool MayStart(long seq)
        {
            lock (_starting)
            {
                if (_failed) return false;
                if (_stopAfter < 0 && _s._budgets.FirstOrDefault(b => b.IsExhausted) is { } spent)
                {
                    _stopAfter = _highestStarted;
                    LogBudget(_s._logger, spent.Limit ?? 0, _stopAfter + 1);
                }
                if (_stopAfter >= 0) return seq <= _stopAfter;
                _highestStarted = Math.Max(_highestStarted, seq);
                return true;
            }
        }

        private async Task<Outcome> InteractAsync(SocialAgent agent, int ordinal, int round, CancellationToken ct)
        {
            var usage = new long[2];
            ModelCallLedger.InteractionUsage.Value = usage;
            string question = _s.QuestionFor(round, ordinal);
            int[] peerIds = SandboxWorld.ChoosePeers(agent.Id, round, _s._neighbourhoods[agent.Id], _s._activeIds, _s.Options);
            IAgent[] peers = [.. peerIds.Select(id => _s._agents[_s._ordinalById[id]])];
            var record = await BackScatterProtocol.RunAsync(agent, question, round, peers, _s._observers, _s.Options.MaxFeedbackPasses,
                (peer, token) => WaitAgentRound(peer.Id, round - 1, token), ct).ConfigureAwait(false);
            record = record with { Model = _s._agentModel, ObserverModel = _s._observerModel };
            MemoryEntry? update = await agent.RememberAsync(question, record.Revision, round, ct).ConfigureAwait(false);
            return new Outcome(record, update, Interlocked.Read(ref usage[0]), Interlocked.Read(ref usage[1]));
        }

        public async Task CommitLoopAsync()
        {
            // Once the caller cancels, stop at once rather than commit stragglers. After a budget stop or a failure,
            // the interactions in flight are still committed, up to the first one that never started or failed.
            var failure = await _slots.CommitInOrderAsync(Commit, Committed, _cts.Token).ConfigureAwait(false);
            if (failure is not null)
            {
                // The first interaction that cannot be committed: its failure is the run's.
                Interlocked.Exchange(ref _failure, failure);
                Fail(failure);
            }
            // Nothing more will be committed: stop whatever still runs.
            if (_log.Count < _slots.Total) _cts.Cancel();
        }

        private ValueTask Commit(long seq, Outcome outcome)
        {
            _log.Commit(seq, outcome.Record, outcome.MemoryUpdate, outcome.TokensIn, outcome.TokensOut);
            Interlocked.Add(ref _ratingFailures, CountFailures(outcome.Record));
            SandboxTelemetry.Interactions.Add(1);
            return ValueTask.CompletedTask;
        }

        private void Committed(long seq, int? round)
        {
            if (round is int r) LogRound(_s._logger, r, _log.Count);
            _progress?.Report(new SandboxProgress((int)(_log.Count / _slots.PerRound), _log.Count, _slots.Total, _s._calls.Outstanding,
                RatingFailures, _s._calls.TokensIn, _s._calls.TokensOut));
        }

        private static long CountFailures(InteractionRecord r) => r.FailedRatings();

        /// <summary>Starts nothing new; what is in flight finishes, and the committer stops at the first gap.</summary>
        private void Fail(Exception ex)
        {
            Interlocked.CompareExchange(ref _failure, ex, null);
            lock (_starting) _failed = true;
        }

        public void Dispose() => _cts.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Sandbox run: {Agents} agents, {Rounds} rounds, resuming after {Start} logged interactions in {LogPath}")]
    private static partial void LogStart(ILogger logger, int agents, int rounds, long start, string logPath);

    [LoggerMessage(Level = LogLevel.Information, Message = "Round {Round} logged ({Interactions} interactions in the log)")]
    private static partial void LogRound(ILogger logger, int round, long interactions);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Token budget {Budget} reached; starting nothing new, the run stops cleanly after interaction {Interactions} of the schedule")]
    private static partial void LogBudget(ILogger logger, long budget, long interactions);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sandbox run ended ({Reason}): {Done} interactions this run, {InLog} in the log, {Seconds:F1} s")]
    private static partial void LogEnd(ILogger logger, SandboxStopReason reason, long done, long inLog, double seconds);
}
