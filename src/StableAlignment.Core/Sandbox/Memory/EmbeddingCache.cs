using System.Collections.Concurrent;
using Microsoft.Extensions.AI;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// Embeds each distinct text once: questions repeat across agents, rounds and memories, and a MiniLM call costs
/// milliseconds while a dictionary hit costs nanoseconds.
/// </summary>
internal sealed class EmbeddingCache(IEmbeddingGenerator<string, Embedding<float>> generator)
{
    private readonly ConcurrentDictionary<string, Lazy<Task<float[]>>> _cache = new(StringComparer.Ordinal);

    public int DistinctTexts => _cache.Count;

    public Task<float[]> GetAsync(string text, CancellationToken cancellationToken)
    {
        var lazy = _cache.GetOrAdd(text, t => new Lazy<Task<float[]>>(() => EmbedAsync(t)));
        var task = lazy.Value;
        // A failed or cancelled embedding must not poison the cache for later callers.
        if (task.IsFaulted || task.IsCanceled) _cache.TryRemove(new KeyValuePair<string, Lazy<Task<float[]>>>(text, lazy));
        return task.WaitAsync(cancellationToken);
    }

    /// <summary>Embeds many texts in one generator call (batching matters for ONNX), filling the cache.</summary>
    public async Task WarmAsync(IEnumerable<string> texts, CancellationToken cancellationToken)
    {
        var missing = texts.Distinct(StringComparer.Ordinal).Where(t => !_cache.ContainsKey(t)).ToList();
        if (missing.Count == 0) return;
        var embeddings = await generator.GenerateAsync(missing, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (embeddings.Count != missing.Count)
            throw new InvalidOperationException($"The embedding generator returned {embeddings.Count} embeddings for {missing.Count} texts.");
        for (int i = 0; i < missing.Count; i++)
        {
            float[] vector = embeddings[i].Vector.ToArray();
            _cache.TryAdd(missing[i], new Lazy<Task<float[]>>(Task.FromResult(vector)));
        }
    }

    private async Task<float[]> EmbedAsync(string text)
    {
        var embeddings = await generator.GenerateAsync([text]).ConfigureAwait(false);
        if (embeddings.Count != 1) throw new InvalidOperationException($"The embedding generator returned {embeddings.Count} embeddings for one text.");
        return embeddings[0].Vector.ToArray();
    }
}
