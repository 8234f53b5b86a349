using Microsoft.Extensions.Logging;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// Builds sandboxes. The core's engine runs every agent in this process (<see cref="SandboxFactory"/>); a plugin package
/// may run them elsewhere (the <c>StableAlignment.Sandbox.Orleans</c> package runs them as grains across silos) and
/// still give the same log. Hosts such as <c>StableAlignmentExperiment</c> take an engine to let their user choose.
/// </summary>
public interface ISandboxEngine
{
    /// <summary>A world of <paramref name="options"/>.</summary>
    /// <param name="options">The world and its protocol.</param>
    /// <param name="backends">
    /// The model clients, embeddings, questions and memory seeds. An engine that runs agents on other hosts uses the
    /// world's <see cref="SandboxBackends.Questions"/> and <see cref="SandboxBackends.MemorySeeds"/> and the model
    /// clients and embeddings configured on those hosts; it says so in its documentation.
    /// </param>
    /// <param name="schedule">How agents are scheduled; defaults when null.</param>
    /// <param name="loggerFactory">Receives the run's log messages; null logs nothing.</param>
    /// <returns>The sandbox.</returns>
    ISandbox Create(SandboxOptions options, SandboxBackends backends, SandboxSchedule? schedule = null, ILoggerFactory? loggerFactory = null);
}
