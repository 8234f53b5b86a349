using StableAlignment.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// A deterministic synthetic preference source: each batch holds <c>groups</c> queries of three responses rated
/// 7, 4 and 1. The best response continues the prompt by a fixed rule, the others with noise, so a model can
/// learn to rank them. Every token of a batch's first row starts with <paramref name="tag"/>, so tests can tell
/// which source a batch came from. Used by tests and benchmarks; real data comes from the AlignmentDataset.
/// </summary>
internal sealed class SyntheticPreferenceSource(long tag, int batches, int groups = 2, int vocab = 23, int seed = 0, int responseTokens = 3) : IPreferenceBatchSource
{
    public int? Count => batches;

    public IEnumerable<PreferenceBatch> Batches(int epoch)
    {
        for (var b = 0; b < batches; b++)
            yield return Build(new Random(unchecked(seed * 1_000_003 + epoch * 10_007 + b * 101 + (int)tag)), b); // HashCode is per-process: not replayable
    }

    private PreferenceBatch Build(Random rng, int batchIndex)
    {
        var rows = new List<(long[] Tokens, int PromptLength, long Group, float Rating)>();
        for (var g = 0; g < groups; g++)
        {
            var prompt = new long[] { tag, rng.Next(4, vocab), rng.Next(4, vocab) };
            // Best: the tokens that follow the prompt's second one (a learnable rule, not a repetition, which tied
            // embeddings would favour from the start); worse ones: random tokens of varying length.
            long Next(int k) => 4 + (prompt[1] - 4 + k) % (vocab - 4);
            rows.Add(([.. prompt, .. Enumerable.Range(1, responseTokens).Select(Next)], 3, g, 7f));
            rows.Add(([.. prompt, .. Enumerable.Range(0, responseTokens - 1 + rng.Next(3)).Select(_ => (long)rng.Next(4, vocab))], 3, g, 4f));
            rows.Add(([.. prompt, .. Enumerable.Range(0, responseTokens - 1 + rng.Next(3)).Select(_ => (long)rng.Next(4, vocab))], 3, g, 1f));
        }
        return SyntheticPreferenceSource.Create(rows, [.. Enumerable.Range(0, groups).Select(g => $"q{batchIndex}-{g}")]);
    }

    /// <summary>Pads rows into a batch: targets shifted by one, prompt and padding positions ignored (-100).</summary>
    public static PreferenceBatch Create(IReadOnlyList<(long[] Tokens, int PromptLength, long Group, float Rating)> rows, IReadOnlyList<string> queries)
    {
        var width = rows.Max(r => r.Tokens.Length - 1);
        var inputs = new long[rows.Count * width];
        var targets = Enumerable.Repeat(-100L, rows.Count * width).ToArray();
        long padding = 0;
        for (var i = 0; i < rows.Count; i++)
        {
            var (tokens, promptLength, _, _) = rows[i];
            for (var t = 0; t < width; t++)
            {
                if (t < tokens.Length - 1)
                {
                    inputs[i * width + t] = tokens[t];
                    if (t + 1 >= promptLength) targets[i * width + t] = tokens[t + 1];
                }
                else padding++;
            }
        }
        var targetTensor = tensor(targets).view(rows.Count, width);
        using var ignored = (-100).ToScalar();
        return new PreferenceBatch
        {
            InputIds = tensor(inputs).view(rows.Count, width),
            Targets = targetTensor,
            LossMask = targetTensor.ne(ignored),
            Groups = tensor(rows.Select(r => r.Group).ToArray()),
            Ratings = tensor(rows.Select(r => r.Rating).ToArray()),
            Queries = queries,
            PaddingTokens = padding,
        };
    }
}
