using StableAlignment.Core.Experiment;

namespace StableAlignment.Embeddings.MiniLM;

/// <summary>Plugs the MiniLM embedding model into an experiment.</summary>
public static class ExperimentBackendsExtensions
{
    /// <summary>The agents' memories embed questions with all-MiniLM-L6-v2 (the experiment creates and disposes the generator).</summary>
    /// <param name="backends">The experiment's backends.</param>
    /// <returns>A copy that uses MiniLM.</returns>
    public static ExperimentBackends WithMiniLmEmbeddings(this ExperimentBackends backends)
    {
        ArgumentNullException.ThrowIfNull(backends);
        return backends with { Embeddings = () => new MiniLmEmbeddingGenerator() };
    }
}
