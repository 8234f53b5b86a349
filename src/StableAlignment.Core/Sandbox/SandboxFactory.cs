using Microsoft.Extensions.Logging;

namespace StableAlignment.Core.Sandbox;

/// <summary>Builds sandboxes: the offline world for samples and tests, or one over any <see cref="Microsoft.Extensions.AI.IChatClient"/>.</summary>
public static class SandboxFactory
{
    /// <summary>
    /// A world on the embedded offline society backend (agents and observers) with MiniLM embeddings and the built-in
    /// questions: no model and no network needed, and the same seed gives a byte-identical log.
    /// </summary>
    /// <example>
    /// <code>
    /// await using var sandbox = SandboxFactory.CreateOffline(new SandboxOptions { GridSize = 4, Seed = 7 });
    /// var result = await sandbox.RunAsync(rounds: 3, logPath: "sandbox.db");
    /// var records = SandboxLog.ReadRecords("sandbox.db");
    /// </code>
    /// </example>
    public static ISandbox CreateOffline(SandboxOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var embeddings = new MiniLmEmbeddingGenerator();
        var backend = new OfflineSocietyChatClient(options.Seed);
        return new Sandbox(options, new SandboxBackends { AgentClient = backend, Embeddings = embeddings }, loggerFactory, embeddings);
    }

    /// <summary>A world over the given clients, embedding generator and questions. The caller keeps ownership of them.</summary>
    public static ISandbox Create(SandboxOptions options, SandboxBackends backends, ILoggerFactory? loggerFactory = null) =>
        new Sandbox(options, backends, loggerFactory, owned: null);
}
