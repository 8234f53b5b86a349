using Microsoft.Extensions.AI;
using System.Text.Json;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Sandbox.Orleans;

// What grains send each other. The core's records (InteractionRecord, RatingOutcome, ObserverScore) travel as the JSON
// the log itself stores (SandboxLog.RecordJson), so what a grain computed is exactly what the coordinator commits.

/// <summary>A memory entry as stored in grain state and sent to a grain on reset.</summary>
[GenerateSerializer, Immutable]
internal sealed record StoredMemory(
    [property: Id(0)] string Question,
    [property: Id(1)] string Answer,
    [property: Id(2)] int Round,
    [property: Id(3)] float[] Embedding);

/// <summary>
/// Puts an agent grain at the start of a run: its world, persona, memory (seed + what the log holds) and the first
/// round the log lacks for it.
/// </summary>
[GenerateSerializer, Immutable]
internal sealed record AgentReset(
    [property: Id(0)] string RunKey,
    [property: Id(1)] int AgentId,
    [property: Id(2)] string Persona,
    [property: Id(3)] IReadOnlyList<StoredMemory> Memory,
    [property: Id(4)] int NextRound);

/// <summary>One interaction to run in the centre agent's grain.</summary>
[GenerateSerializer, Immutable]
internal sealed record InteractionRequest(
    [property: Id(0)] int Round,
    [property: Id(1)] string Question,
    [property: Id(2)] int[] PeerIds);

/// <summary>Tokens (in, out) a participant used in one interaction; participant keys are "agent:{id}" and "observer:{id}".</summary>
[GenerateSerializer, Immutable]
internal sealed record ParticipantTokens(
    [property: Id(0)] string Participant,
    [property: Id(1)] long In,
    [property: Id(2)] long Out);

/// <summary>
/// What an interaction produced: the record and the memory update (as the log stores them), tokens, and the silo it
/// ran on. <see cref="BudgetExhausted"/> = the silo's token budget was spent, so the interaction never started.
/// </summary>
[GenerateSerializer, Immutable]
internal sealed record InteractionReply(
    [property: Id(0)] string? RecordJson,
    [property: Id(1)] StoredMemory? MemoryUpdate,
    [property: Id(2)] long TokensIn,
    [property: Id(3)] long TokensOut,
    [property: Id(4)] IReadOnlyList<ParticipantTokens> Participants,
    [property: Id(5)] string Silo,
    [property: Id(6)] bool BudgetExhausted)
{
    public InteractionRecord Record() =>
        JsonSerializer.Deserialize<InteractionRecord>(RecordJson ?? throw new InvalidOperationException("The interaction never started."), SandboxLog.RecordJson)
        ?? throw new InvalidOperationException("An agent grain returned an empty record.");
}

/// <summary>A peer's or observer's answer (a RatingOutcome or ObserverScore as JSON) and the tokens it cost.</summary>
[GenerateSerializer, Immutable]
internal sealed record RatingReply(
    [property: Id(0)] string Json,
    [property: Id(1)] long TokensIn,
    [property: Id(2)] long TokensOut);

/// <summary>
/// The models a silo runs a world with, as the log's fingerprint names them (the embedding model; the agents' and
/// observers' back-ends) and as each record carries them (the model ids), so every silo must agree on them.
/// </summary>
[GenerateSerializer, Immutable]
internal sealed record SiloModels(
    [property: Id(0)] string? Provider,
    [property: Id(1)] string? Model,
    [property: Id(2)] int? Dimensions,
    [property: Id(3)] string Agents,
    [property: Id(4)] string Observers,
    [property: Id(5)] string? AgentModelId,
    [property: Id(6)] string? ObserverModelId)
{
    public EmbeddingGeneratorMetadata Embeddings => new(Provider, null, Model, Dimensions);

    public override string ToString() => $"embeddings {Provider}/{Model}/{Dimensions}, agents {Agents}, observers {Observers}";
}

/// <summary>An agent grain's persisted state.</summary>
/// <remarks>
/// No field may start at anything but its type's default: the Orleans serializer leaves default values out, so a
/// stored 0 would come back as the initializer's value.
/// </remarks>
[GenerateSerializer]
internal sealed class AgentGrainState
{
    [Id(0)] public string RunKey { get; set; } = "";

    [Id(1)] public int AgentId { get; set; }

    [Id(2)] public string Persona { get; set; } = "";

    [Id(3)] public List<StoredMemory> Memory { get; set; } = [];

    /// <summary>Rounds this agent has completed as the centre; the reply of the last one is kept, so asked again, the grain answers it again.</summary>
    [Id(4)] public int CompletedRounds { get; set; }

    [Id(5)] public InteractionReply? LastReply { get; set; }
}

/// <summary>A world grain's persisted state: the world's options, as JSON.</summary>
[GenerateSerializer]
internal sealed class WorldGrainState
{
    [Id(0)] public string OptionsJson { get; set; } = "";
}
