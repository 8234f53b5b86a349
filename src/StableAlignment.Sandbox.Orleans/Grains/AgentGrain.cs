using System.Globalization;
using System.Text.Json;
using Orleans.Concurrency;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Sandbox.Orleans;

/// <summary>
/// A social agent as a grain. It runs the core's <see cref="SocialAgent"/> (the same prompts, memory retrieval and
/// rating parser as the in-process sandbox) over memory kept in grain persistence, and runs interactions with
/// <see cref="BackScatterProtocol"/>, asking its peers grain to grain and its observers through stateless workers.
/// </summary>
/// <remarks>
/// Interactions of one agent never overlap (the coordinator starts round r + 1 after round r returned), while feedback
/// requests interleave with them: a peer rates with the entries stored before the round it is asked about, so what
/// it has stored since does not change its answer. Memory is written to storage before an interaction returns, so a
/// silo that dies afterwards loses nothing, and a silo that dies before loses only that interaction, which is redone:
/// the redo first forgets what the lost attempt stored.
/// Agents are dealt over the silos by id (<see cref="AgentPlacement"/>), so a run's model calls spread evenly.
/// </remarks>
[AgentPlacement]
internal sealed class AgentGrain(
    [PersistentState("agent", OrleansSandboxBuilderExtensions.StorageName)] IPersistentState<AgentGrainState> state,
    SiloWorlds worlds) : Grain, IAgentGrain
{
    private SocialAgent? _agent;
    private SiloWorld? _world;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (state.RecordExists && state.State.RunKey.Length > 0) await BuildAsync().ConfigureAwait(true);
    }

    private async Task BuildAsync()
    {
        _world = await worlds.GetAsync(state.State.RunKey).ConfigureAwait(true);
        _agent = _world.Agent(state.State.AgentId, state.State.Persona);
        foreach (var m in state.State.Memory) _agent.Memory.Add(new MemoryEntry(m.Question, m.Answer, m.Round) { Embedding = m.Embedding });
    }

    public async Task<SiloModels> ResetAsync(AgentReset reset)
    {
        _world = await worlds.GetAsync(reset.RunKey).ConfigureAwait(true);
        var embeddings = _world.Runtime.Embeddings;
        await embeddings.WarmAsync(reset.Memory.Select(m => m.Question), CancellationToken.None).ConfigureAwait(true);
        var memory = new List<StoredMemory>(reset.Memory.Count);
        foreach (var m in reset.Memory)
            memory.Add(m with { Embedding = await embeddings.GetAsync(m.Question, CancellationToken.None).ConfigureAwait(true) });
        state.State = new AgentGrainState
        { RunKey = reset.RunKey, AgentId = reset.AgentId, Persona = reset.Persona, Memory = memory, CompletedRounds = reset.NextRound };
        await state.WriteStateAsync().ConfigureAwait(true);
        await BuildAsync().ConfigureAwait(true);
        return _world.Models;
    }

    private (SocialAgent Agent, SiloWorld World) Ready() =>
        _agent is not null && _world is not null ? (_agent, _world)
            : throw new InvalidOperationException($"Agent grain '{this.GetPrimaryKeyString()}' was never reset for a run.");

    public async Task<InteractionReply> InteractAsync(InteractionRequest request)
    {
        var (agent, world) = Ready();
        // Idempotent by (round, agent): the coordinator asks again when a reply may have been lost (a dead gateway or
        // silo, a timeout), and gets the reply already stored rather than a second run of the interaction.
        if (request.Round < state.State.CompletedRounds)
        {
            return request.Round == state.State.CompletedRounds - 1 && state.State.LastReply is { } stored ? stored
                : throw new InvalidOperationException(
                    $"Agent {agent.Id} was asked for round {request.Round} after completing {state.State.CompletedRounds} rounds; the request is stale.");
        }
        if (world.BudgetExhausted) return new InteractionReply(null, null, 0, 0, [], worlds.SiloName, BudgetExhausted: true);

        // An attempt lost with a dead silo, or cut off by a restart, may have stored this round's memory: forget it.
        if (state.State.Memory.RemoveAll(m => m.Round >= request.Round) > 0) agent.Memory.ForgetFrom(request.Round);

        var usage = new long[2];
        ModelCallLedger.InteractionUsage.Value = usage;
        var others = new List<ParticipantTokens>();
        string run = state.State.RunKey;
        IAgent[] peers = [.. request.PeerIds.Select(id => new RemotePeer(GrainFactory.GetGrain<IAgentGrain>(AgentKey(run, id)), id, others))];
        IObserverAgent[] observers = [.. Enumerable.Range(0, world.Options.ObserverCount)
            .Select(i => new RemoteObserver(GrainFactory.GetGrain<IObserverGrain>(AgentKey(run, i)), i, others))];

        var record = await BackScatterProtocol.RunAsync(agent, request.Question, request.Round, peers, observers, world.Options.MaxFeedbackPasses,
            static (_, _) => Task.CompletedTask, CancellationToken.None).ConfigureAwait(true);
        record = record with { Model = world.Models.AgentModelId, ObserverModel = world.Models.ObserverModelId };
        var update = await agent.RememberAsync(request.Question, record.Revision, request.Round, CancellationToken.None).ConfigureAwait(true);
        StoredMemory? memory = update is null ? null : new StoredMemory(update.Question, update.Answer, update.Round, update.Embedding);
        if (memory is not null) state.State.Memory.Add(memory);
        SiloWorlds.SiloInteractions.Add(1, new KeyValuePair<string, object?>("silo", worlds.SiloName));

        long tokensIn = Interlocked.Read(ref usage[0]), tokensOut = Interlocked.Read(ref usage[1]);
        List<ParticipantTokens> participants;
        lock (others)
        {
            participants = [.. others.GroupBy(p => p.Participant, StringComparer.Ordinal)
                .Select(g => new ParticipantTokens(g.Key, g.Sum(p => p.In), g.Sum(p => p.Out)))];
        }
        participants.Add(new ParticipantTokens(ModelCallLedger.Participant("agent", agent.Id),
            tokensIn - participants.Sum(p => p.In), tokensOut - participants.Sum(p => p.Out)));
        var reply = new InteractionReply(JsonSerializer.Serialize(record, SandboxLog.RecordJson), memory, tokensIn, tokensOut, participants,
            worlds.SiloName, BudgetExhausted: false);
        // Memory and reply are stored in one write before the reply leaves: a silo that dies later loses nothing.
        (state.State.CompletedRounds, state.State.LastReply) = (request.Round + 1, reply);
        await state.WriteStateAsync().ConfigureAwait(true);
        return reply;
    }

    public async Task<RatingReply> GiveFeedbackAsync(string question, string answer, int round, int centreAgentId, int pass)
    {
        var (agent, _) = Ready();
        var usage = new long[2];
        ModelCallLedger.InteractionUsage.Value = usage;
        var rating = await agent.GiveFeedbackAsync(question, answer, new InteractionContext(round, centreAgentId, pass)).ConfigureAwait(true);
        return new RatingReply(JsonSerializer.Serialize(rating, SandboxLog.RecordJson), Interlocked.Read(ref usage[0]), Interlocked.Read(ref usage[1]));
    }

    public Task<string> DraftAsync(string question, int round, int centreAgentId, int pass) =>
        Ready().Agent.DraftAsync(question, new InteractionContext(round, centreAgentId, pass));

    public Task<string> ReviseAsync(string question, string answer, string feedbackJson, int round, int centreAgentId, int pass)
    {
        var feedback = JsonSerializer.Deserialize<List<PeerFeedback>>(feedbackJson, SandboxLog.RecordJson) ?? [];
        return Ready().Agent.ReviseAsync(question, answer, feedback, new InteractionContext(round, centreAgentId, pass));
    }

    internal static string AgentKey(string run, int id) => string.Create(CultureInfo.InvariantCulture, $"{run}/{id}");
}

/// <summary>An observer as a stateless worker: the core's <see cref="ObserverAgent"/> on the calling silo's pipeline.</summary>
/// <remarks>
/// Reentrant: a stateless worker otherwise takes one request at a time per activation, and a silo keeps only as many
/// activations as it has cores, which capped the ratings in flight below the silo's call limit (at 1 silo, 100 ms
/// calls and a cap of 16, the run was 1.9x slower than in process). The silo's call policy is what limits concurrency.
/// </remarks>
[StatelessWorker, Reentrant]
internal sealed class ObserverGrain(SiloWorlds worlds) : Grain, IObserverGrain
{
    public async Task<RatingReply> ScoreAsync(string question, string answer, int round, int centreAgentId, int pass)
    {
        string key = this.GetPrimaryKeyString();
        int slash = key.LastIndexOf('/');
        var world = await worlds.GetAsync(key[..slash]).ConfigureAwait(true);
        var observer = world.Observer(int.Parse(key[(slash + 1)..], CultureInfo.InvariantCulture));
        var usage = new long[2];
        ModelCallLedger.InteractionUsage.Value = usage;
        var score = await observer.ScoreAsync(question, answer, new InteractionContext(round, centreAgentId, pass)).ConfigureAwait(true);
        return new RatingReply(JsonSerializer.Serialize(score, SandboxLog.RecordJson), Interlocked.Read(ref usage[0]), Interlocked.Read(ref usage[1]));
    }
}

/// <summary>A world's options, persisted so a silo that joins or replaces another can read them.</summary>
internal sealed class WorldGrain([PersistentState("world", OrleansSandboxBuilderExtensions.StorageName)] IPersistentState<WorldGrainState> state)
    : Grain, IWorldGrain
{
    public async Task SetAsync(string optionsJson)
    {
        if (state.State.OptionsJson == optionsJson) return;
        state.State.OptionsJson = optionsJson;
        await state.WriteStateAsync().ConfigureAwait(true);
    }

    public Task<string> GetAsync() => state.RecordExists ? Task.FromResult(state.State.OptionsJson)
        : throw new InvalidOperationException($"World '{this.GetPrimaryKeyString()}' has no options; the coordinator sets them before the run.");
}

[StatelessWorker]
internal sealed class SiloInfoGrain(SiloWorlds worlds) : Grain, ISiloInfoGrain
{
    public Task<SiloModels> ModelsAsync(string worldJson) => Task.FromResult(worlds.Models(worldJson));
}

/// <summary>A peer in another grain, as <see cref="BackScatterProtocol"/> sees it; its tokens count to the interaction.</summary>
internal sealed class RemotePeer(IAgentGrain grain, int id, List<ParticipantTokens> usage) : IAgent
{
    public int Id { get; } = id;

    public GridPosition Position => throw new NotSupportedException("A remote peer is asked for feedback only.");

    public string Persona => throw new NotSupportedException("A remote peer is asked for feedback only.");

    public AgentMemory Memory => throw new NotSupportedException("A remote peer's memory lives in its grain.");

    public async Task<RatingOutcome> GiveFeedbackAsync(string question, string answer, InteractionContext context, CancellationToken cancellationToken = default)
    {
        var reply = await grain.GiveFeedbackAsync(question, answer, context.Round, context.CentreAgentId, context.Pass).ConfigureAwait(true);
        RemoteCalls.Charge(usage, ModelCallLedger.Participant("agent", Id), reply);
        return JsonSerializer.Deserialize<RatingOutcome>(reply.Json, SandboxLog.RecordJson)!;
    }

    public Task<string> DraftAsync(string question, InteractionContext context, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("A remote peer is asked for feedback only.");

    public Task<string> ReviseAsync(string question, string answer, IReadOnlyList<PeerFeedback> feedback, InteractionContext context,
        CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("A remote peer is asked for feedback only.");
}

/// <summary>An observer grain, as <see cref="BackScatterProtocol"/> sees it.</summary>
internal sealed class RemoteObserver(IObserverGrain grain, int id, List<ParticipantTokens> usage) : IObserverAgent
{
    public int Id { get; } = id;

    public async Task<ObserverScore> ScoreAsync(string question, string answer, InteractionContext context, CancellationToken cancellationToken = default)
    {
        var reply = await grain.ScoreAsync(question, answer, context.Round, context.CentreAgentId, context.Pass).ConfigureAwait(true);
        RemoteCalls.Charge(usage, ModelCallLedger.Participant("observer", Id), reply);
        return JsonSerializer.Deserialize<ObserverScore>(reply.Json, SandboxLog.RecordJson)!;
    }
}

internal static class RemoteCalls
{
    /// <summary>Adds a remote participant's tokens to the interaction in this flow (as the core's ledger does for local calls).</summary>
    public static void Charge(List<ParticipantTokens> usage, string participant, RatingReply reply)
    {
        if (ModelCallLedger.InteractionUsage.Value is { } interaction)
        {
            Interlocked.Add(ref interaction[0], reply.TokensIn);
            Interlocked.Add(ref interaction[1], reply.TokensOut);
        }
        lock (usage) usage.Add(new ParticipantTokens(participant, reply.TokensIn, reply.TokensOut));
    }
}
