using Microsoft.Extensions.AI;

namespace StableAlignment.Core.Sandbox;

/// <summary>
/// A tiny offline embedding generator: a hashed bag of lower-cased words (FNV-1a into <see cref="Dimensions"/> bins),
/// L2-normalised. Deterministic, dependency-free and fast; it finds questions that share words, not meaning. It is
/// the sandbox's default when no real embedding model is given (the <c>StableAlignment.Embeddings.MiniLM</c> package
/// adds an offline sentence-embedding model).
/// </summary>
public sealed class HashingEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private static readonly char[] Separators = [' ', '?', '.', ',', '!', '\'', '\n', '\t', ';', ':', '"', '(', ')'];
    private readonly EmbeddingGeneratorMetadata _metadata;

    /// <summary>Creates the generator.</summary>
    /// <param name="dimensions">Number of hash bins, at least 8.</param>
    public HashingEmbeddingGenerator(int dimensions = 256)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 8);
        Dimensions = dimensions;
        _metadata = new EmbeddingGeneratorMetadata("StableAlignment.Hashing", null, "hashed-bag-of-words", dimensions);
    }

    /// <summary>The length of every embedding.</summary>
    public int Dimensions { get; }

    /// <summary>The embedding of one text.</summary>
    /// <param name="text">The text.</param>
    /// <returns>A unit vector (all zeros for a text without words).</returns>
    public float[] Embed(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var v = new float[Dimensions];
        foreach (string w in text.ToLowerInvariant().Split(Separators, StringSplitOptions.RemoveEmptyEntries))
        {
            uint h = 2166136261;
            foreach (char c in w) h = (h ^ c) * 16777619;
            v[h % (uint)Dimensions] += 1;
        }
        double norm = Math.Sqrt(v.Sum(x => (double)x * x));
        if (norm > 0)
        {
            for (int i = 0; i < v.Length; i++) v[i] = (float)(v[i] / norm);
        }
        return v;
    }

    /// <inheritdoc />
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(v => new Embedding<float>(Embed(v)) { ModelId = _metadata.DefaultModelId })));
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return _metadata;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
    }
}
