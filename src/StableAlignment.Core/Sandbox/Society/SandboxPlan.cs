using StableAlignment.Core.ModelCalls;
using Microsoft.Extensions.AI;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// The deterministic plan of one world, shared by every engine that runs it (the in-process <see cref="Sandbox"/> and
/// the Orleans plugin's coordinator), so that both give the same log: the active agents and their personas, the
/// neighbourhoods, the question order, the memory seeds and the log's fingerprint. Peers come from
/// <see cref="SandboxWorld.ChoosePeers"/>, interactions from <see cref="BackScatterProtocol"/>, and the log's commit
/// format from <see cref="SandboxLogWriter"/>.
/// </summary>
internal sealed class SandboxPlan
{
    private readonly IReadOnlyList<string> _questions;
    private readonly IReadOnlyDictionary<string, IReadOnlyList<QuestionAnswer>> _memorySeeds;
    private readonly Dictionary<int, int> _ordinalById;

    /// <summary>Validates the options and that every persona on the grid has a seed set.</summary>
    /// <exception cref="ArgumentException">An option is invalid, or a persona has no memory seeds (named).</exception>
    public SandboxPlan(SandboxOptions options, QuestionSource questions, IReadOnlyDictionary<string, IReadOnlyList<QuestionAnswer>> memorySeeds)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(questions);
        ArgumentNullException.ThrowIfNull(memorySeeds);
        options.Validate();
        Personas = SandboxWorld.LayoutPersonas(options);
        foreach (string persona in Personas.OfType<string>().Distinct())
        {
            if (options.MemorySeedSize > 0 && !memorySeeds.ContainsKey(persona))
                throw new ArgumentException($"SandboxBackends.MemorySeeds has no seed set for persona '{persona}'.", nameof(memorySeeds));
        }
        Options = options;
        _questions = questions.Questions;
        _memorySeeds = memorySeeds;
        ActiveIds = [.. Personas.Select((p, id) => (p, id)).Where(x => x.p is not null).Select(x => x.id)];
        _ordinalById = ActiveIds.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i);
        Neighbourhoods = SandboxWorld.Neighbourhoods(ActiveIds, options.GridSize, options.EffectiveRadius);
    }

    public SandboxOptions Options { get; }

    /// <summary>The persona of each cell (row-major), null for an empty cell.</summary>
    public string?[] Personas { get; }

    /// <summary>The active agents' ids, in id order; an agent's ordinal is its index here.</summary>
    public int[] ActiveIds { get; }

    /// <summary>For each active agent, its neighbours in id order.</summary>
    public Dictionary<int, int[]> Neighbourhoods { get; }

    /// <summary>Interactions per round.</summary>
    public int AgentsPerRound => ActiveIds.Length;

    public int OrdinalOf(int agentId) => _ordinalById[agentId];

    /// <summary>The schedule position of (round, agent): the log's row number.</summary>
    public long SequenceOf(int round, int agentId) => (long)round * AgentsPerRound + _ordinalById[agentId];

    /// <summary>The question agent number <paramref name="ordinal"/> (in id order) answers in <paramref name="round"/>.</summary>
    public string QuestionFor(int round, int ordinal) => _questions[(int)(((long)round * AgentsPerRound + ordinal) % _questions.Count)];

    /// <summary>The peers of <paramref name="agentId"/> in <paramref name="round"/>, in draw order.</summary>
    public int[] PeersOf(int agentId, int round) => SandboxWorld.ChoosePeers(agentId, round, Neighbourhoods[agentId], ActiveIds, Options);

    /// <summary>The persona-matched seed of an agent's memory (stored as round -1): a seeded shuffle of its persona's set.</summary>
    public IEnumerable<QuestionAnswer> MemorySeed(int agentId)
    {
        if (Options.MemorySeedSize == 0) return [];
        var pool = _memorySeeds[Personas[agentId]!].ToList();
        var rng = new DeterministicRandom(StableHash.Combine((ulong)Options.Seed, agentId, 0x5EEDL));
        rng.Shuffle(pool);
        return pool.Take(Options.MemorySeedSize);
    }

    /// <summary>Every question of the schedule's pool (embedded up front, in one batch).</summary>
    public IReadOnlyList<string> Questions => _questions;

    /// <summary>
    /// The options' fingerprint plus the models: the embedding model decides what memories are retrieved, and the
    /// agents' and observers' back-ends (<see cref="ModelIdentity.Describe"/>) write and rate every answer, so a log is
    /// never extended by another model.
    /// </summary>
    public string Fingerprint(EmbeddingGeneratorMetadata? embeddings, string agents, string observers) =>
        Options.Fingerprint(_questions)
        + $"Embeddings={embeddings?.ProviderName}/{embeddings?.DefaultModelId}/{embeddings?.DefaultModelDimensions}\n"
        + $"Agents={agents}\nObservers={observers}\n";
}
