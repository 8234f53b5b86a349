using Microsoft.Extensions.AI;
using StableAlignment.Core.ChatClients;
using StableAlignment.Core.ModelCalls;
using StableAlignment.Core.Sandbox;

namespace StableAlignment.Sandbox.Orleans;

/// <summary>
/// What one silo runs its agents on: its model clients (each silo may point at its own model server), the call policy
/// it composes around them (so the concurrency cap, retries and budget are per silo), its embedding model and its grain
/// storage. Validated by <see cref="Validate"/>, which <c>UseStableAlignmentSandbox</c> calls.
/// </summary>
public sealed record OrleansSandboxSiloOptions
{
    /// <summary>
    /// Creates the social agents' model client for a world (the silo composes <see cref="Calls"/> around it and disposes
    /// it with the silo). Default: the offline society seeded by the world's seed, as the in-process sandbox has it.
    /// </summary>
    public Func<SandboxOptions, IChatClient> AgentClient { get; init; } = world => new OfflineSocietyChatClient(world.Seed);

    /// <summary>Creates the observers' model client for a world; null uses <see cref="AgentClient"/>'s pipeline.</summary>
    public Func<SandboxOptions, IChatClient>? ObserverClient { get; init; }

    /// <summary>Creates the silo's embedding generator (once; disposed with the silo). Every silo of a cluster must use the same model.</summary>
    public Func<IEmbeddingGenerator<string, Embedding<float>>> Embeddings { get; init; } = () => new HashingEmbeddingGenerator();

    /// <summary>The call policy of this silo's clients: concurrency cap, retries, timeouts and token budget, all per silo.</summary>
    public ModelCallOptions Calls { get; init; } = new();

    /// <summary>
    /// The SQLite file of the agents' grain state (one machine). Null: the host registers a grain storage named
    /// <see cref="OrleansSandboxBuilderExtensions.StorageName"/> itself, for example ADO.NET with PostgreSQL.
    /// </summary>
    public string? SqliteStoragePath { get; init; }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid option.</summary>
    /// <returns>This instance, for chaining.</returns>
    public OrleansSandboxSiloOptions Validate()
    {
        if (AgentClient is null) throw new ArgumentException("OrleansSandboxSiloOptions.AgentClient: must not be null.", nameof(AgentClient));
        if (Embeddings is null) throw new ArgumentException("OrleansSandboxSiloOptions.Embeddings: must not be null.", nameof(Embeddings));
        if (Calls is null) throw new ArgumentException("OrleansSandboxSiloOptions.Calls: must not be null.", nameof(Calls));
        Calls.Validate();
        if (SqliteStoragePath is not null && string.IsNullOrWhiteSpace(SqliteStoragePath))
            throw new ArgumentException("OrleansSandboxSiloOptions.SqliteStoragePath: must be a file path or null, got a blank string.", nameof(SqliteStoragePath));
        return this;
    }
}
