using StableAlignment.Core.Data;
using StableAlignment.Core.Training;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

/// <summary>
/// A deterministic synthetic preference source: each batch holds <c>groups</c> queries of three responses rated
/// 7, 4 and 1. The best response continues the prompt by a fixed rule, the others with noise, so a model can
/// learn to rank them. Every token of a batch's first row starts with <paramref name="tag"/>, so tests can tell
/// which source a batch came from.
/// </summary>
internal sealed class TrainerTestSource(long tag, int batches, int groups = 2, int vocab = 23, int seed = 0) : IPreferenceBatchSource
{
    public int? Count => batches;

    public IEnumerable<PreferenceBatch> Batches(int epoch)
    {
        for (var b = 0; b < batches; b++)
            yield return Build(new Random(HashCode.Combine(seed, epoch, b, tag)), b);
    }

    private PreferenceBatch Build(Random rng, int batchIndex)
    {
        var rows = new List<(long[] Tokens, int PromptLength, long Group, float Rating)>();
        for (var g = 0; g < groups; g++)
        {
            var prompt = new long[] { tag, rng.Next(4, vocab), rng.Next(4, vocab) };
            // Best: the three tokens after the prompt's second one (a learnable rule, not a repetition, which tied
            // embeddings would favour from the start); worse ones: random tokens of varying length.
            long Next(int k) => 4 + (prompt[1] - 4 + k) % (vocab - 4);
            rows.Add(([.. prompt, Next(1), Next(2), Next(3)], 3, g, 7f));
            rows.Add(([.. prompt, .. Enumerable.Range(0, 2 + rng.Next(3)).Select(_ => (long)rng.Next(4, vocab))], 3, g, 4f));
            rows.Add(([.. prompt, .. Enumerable.Range(0, 2 + rng.Next(3)).Select(_ => (long)rng.Next(4, vocab))], 3, g, 1f));
        }
        return TrainerBatches.Create(rows, [.. Enumerable.Range(0, groups).Select(g => $"q{batchIndex}-{g}")]);
    }
}

internal static class TrainerBatches
{
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
        return new PreferenceBatch
        {
            InputIds = tensor(inputs).view(rows.Count, width),
            Targets = targetTensor,
            LossMask = targetTensor.ne(-100),
            Groups = tensor(rows.Select(r => r.Group).ToArray()),
            Ratings = tensor(rows.Select(r => r.Rating).ToArray()),
            Queries = queries,
            PaddingTokens = padding,
        };
    }
}

/// <summary>Wraps a loss and records, per call, the tag of the batch's first token and the objective.</summary>
internal sealed class RecordingLoss(IPreferenceLoss inner, List<(long Tag, bool SftOnly)> calls, Func<long, bool>? poison = null, bool poisonGradientOnly = false) : IPreferenceLoss
{
    public ContrastivePreferenceOptions Options => inner.Options;

    public PreferenceLossResult Compute(Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor? lossMask = null)
    {
        var tag = Tags.Current;
        lock (calls) calls.Add((tag, Options.SftOnly));
        var result = inner.Compute(logits, targets, groups, ratings, lossMask);
        if (poison?.Invoke(tag) != true) return result;
        // Either a NaN loss, or a finite loss whose gradient is NaN (sqrt at 0 has an infinite slope, times 0).
        var bad = poisonGradientOnly ? result.Loss + (logits.sum() * 0).sqrt() : result.Loss * double.NaN;
        return new PreferenceLossResult(bad, result.ResponseNll, result.SftTerms, result.RankingTerms, result.BestHasLowestNll);
    }
}

/// <summary>Carries the tag of the batch being trained on from the source wrapper to the loss.</summary>
internal static class Tags
{
    [ThreadStatic] public static long Current;
}

/// <summary>Sets <see cref="Tags.Current"/> to each batch's first input token as the trainer pulls it.</summary>
internal sealed class TaggingSource(IPreferenceBatchSource inner) : IPreferenceBatchSource
{
    public int? Count => inner.Count;

    public IEnumerable<PreferenceBatch> Batches(int epoch)
    {
        foreach (var batch in inner.Batches(epoch))
        {
            Tags.Current = batch.InputIds[0, 0].item<long>();
            yield return batch;
        }
    }
}
