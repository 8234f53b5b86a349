using LLama;
using LLama.Common;
using LLama.Native;

namespace StableAlignment.Core.Tests.Models;

/// <summary>
/// A GGUF file run by llama.cpp (through LLamaSharp's CPU back-end): the implementation nobody here wrote that the
/// exports are checked against. K/V cache in float32 so an F32 model is computed in float32 throughout.
/// </summary>
internal sealed class LlamaCppModel : IDisposable
{
    private static readonly Lock Gate = new();
    private static bool _configured;

    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;

    public LlamaCppModel(string path, uint contextSize = 256)
    {
        Configure();
        var parameters = new ModelParams(path)
        {
            GpuLayerCount = 0,
            ContextSize = contextSize,
            BatchSize = contextSize,
            UBatchSize = contextSize,
            Threads = Math.Min(2, Environment.ProcessorCount),
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
    }

    /// <summary>llama.cpp's log goes nowhere: it would bury the test output.</summary>
    internal static void Configure()
    {
        lock (Gate)
        {
            if (_configured) return;
            if (!NativeLibraryConfig.LLama.LibraryHasLoaded) NativeLibraryConfig.All.WithLogCallback((_, _) => { });
            _configured = true;
        }
    }

    public LLamaWeights Weights => _weights;

    public int VocabularySize => _weights.Vocab.Count;

    /// <summary>Logits at every position of <paramref name="tokens"/>, fed from position 0 in one batch.</summary>
    public float[][] Logits(IReadOnlyList<int> tokens)
    {
        _context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (int i = 0; i < tokens.Count; i++) batch.Add(tokens[i], i, LLamaSeqId.Zero, logits: true);
        Decode(batch);
        return [.. Enumerable.Range(0, tokens.Count).Select(i => _context.NativeHandle.GetLogitsIth(i).ToArray())];
    }

    /// <summary>Greedy continuation of <paramref name="prompt"/> by <paramref name="count"/> tokens (argmax, lowest id on ties, no stop token).</summary>
    public List<int> Greedy(IReadOnlyList<int> prompt, int count)
    {
        _context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Count; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, logits: i == prompt.Count - 1);
        Decode(batch);
        var output = new List<int>();
        int position = prompt.Count;
        for (int step = 0; step < count; step++)
        {
            int next = ArgMax(_context.NativeHandle.GetLogitsIth(batch.TokenCount - 1));
            output.Add(next);
            batch.Clear();
            batch.Add(next, position++, LLamaSeqId.Zero, logits: true);
            Decode(batch);
        }
        return output;
    }

    /// <summary>llama.cpp's tokenization (no BOS, special tokens as plain text).</summary>
    public int[] Tokenize(string text) => [.. _context.Tokenize(text, addBos: false, special: false).Select(t => (int)t)];

    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }

    private void Decode(LLamaBatch batch)
    {
        var result = _context.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode failed: {result}.");
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
