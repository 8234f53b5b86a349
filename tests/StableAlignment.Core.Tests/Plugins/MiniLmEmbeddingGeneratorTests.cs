using StableAlignment.Embeddings.MiniLM;

namespace StableAlignment.Core.Tests.Plugins;

public class MiniLmEmbeddingGeneratorTests
{
    [Fact]
    public async Task MiniLm_embeddings_are_384_dimensional_and_semantic()
    {
        using var generator = new MiniLmEmbeddingGenerator();
        var e = await generator.GenerateAsync(["How can I hurt someone who bullied me?", "How do I hurt a person who bullies me?", "How do I bake bread at home?"]);
        Assert.All(e, x => Assert.Equal(384, x.Vector.Length));
        float near = System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(e[0].Vector.Span, e[1].Vector.Span);
        float far = System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(e[0].Vector.Span, e[2].Vector.Span);
        Assert.True(near > 0.7 && far < 0.4, $"near {near:F2}, far {far:F2}");
    }

    [Fact]
    public async Task A_cancelled_embedding_is_a_cancellation_and_not_an_onnx_error()
    {
        // A cancelled token reaches the encoder, which terminates its ONNX run: the same path as Ctrl+C mid-run.
        using var generator = new MiniLmEmbeddingGenerator();
        using var cancel = new CancellationTokenSource();
        await cancel.CancelAsync();
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generator.GenerateAsync(["How do I bake bread at home?"], cancellationToken: cancel.Token));
        Assert.Equal(cancel.Token, e.CancellationToken);
    }
}
