using StableAlignment.Core.Data;
using StableAlignment.Core.Training;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

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
