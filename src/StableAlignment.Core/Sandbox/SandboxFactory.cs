using Microsoft.Extensions.Logging;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// Builds sandboxes over any <see cref="Microsoft.Extensions.AI.IChatClient"/>. For a world on the embedded offline
/// society, see <c>OfflineSocietyChatClient.CreateSandbox</c> in <c>StableAlignment.Core.ChatClients</c>.
/// </summary>
public static class SandboxFactory
{
    /// <summary>A world over the given clients, embedding generator and questions. The caller keeps ownership of them.</summary>
    /// <param name="options">The world and its protocol.</param>
    /// <param name="backends">The model clients (with their call policy composed in), embeddings and questions.</param>
    /// <param name="schedule">How agents are scheduled; defaults when null.</param>
    /// <param name="loggerFactory">Receives the run's log messages; null logs nothing.</param>
    /// <returns>The sandbox.</returns>
    public static ISandbox Create(SandboxOptions options, SandboxBackends backends, SandboxSchedule? schedule = null, ILoggerFactory? loggerFactory = null) =>
        new Sandbox(options, backends, schedule, loggerFactory, owned: null);

    /// <summary>Like <see cref="Create"/>, disposing <paramref name="owned"/> with the sandbox.</summary>
    internal static ISandbox CreateOwning(SandboxOptions options, SandboxBackends backends, SandboxSchedule? schedule, ILoggerFactory? loggerFactory,
        IDisposable owned) =>
        new Sandbox(options, backends, schedule, loggerFactory, owned);
}
