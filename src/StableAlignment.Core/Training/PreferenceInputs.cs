using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// The validated host-side view of one loss batch: shapes, the group structure and each response's
/// token count. Both loss implementations start here, so they reject the same inputs with the same messages.
/// </summary>
internal sealed class PreferenceInputs
{
    private PreferenceInputs(int n, int t, int v, int groupCount, long[] groupOf, double[] ratings, long[] targetIds, bool[] tokenMask, int[] lengths)
    {
        Responses = n;
        Tokens = t;
        Vocabulary = v;
        GroupCount = groupCount;
        GroupOf = groupOf;
        Ratings = ratings;
        TargetIds = targetIds;
        TokenMask = tokenMask;
        Lengths = lengths;

        BestRating = new double[groupCount];
        Array.Fill(BestRating, double.NegativeInfinity);
        for (int i = 0; i < n; i++)
            BestRating[groupOf[i]] = Math.Max(BestRating[groupOf[i]], ratings[i]);

        IsBest = new bool[n];
        BestCount = new int[groupCount];
        OtherCount = new int[groupCount];
        for (int i = 0; i < n; i++)
        {
            // Every response that shares the top rating is "best": the SFT term is their mean NLL and
            // they are not ranked against each other, which keeps the loss invariant to their order.
            IsBest[i] = ratings[i] == BestRating[groupOf[i]];
            if (IsBest[i]) BestCount[groupOf[i]]++;
            else OtherCount[groupOf[i]]++;
        }
    }

    public int Responses { get; }
    public int Tokens { get; }
    public int Vocabulary { get; }
    public int GroupCount { get; }
    public long[] GroupOf { get; }
    public double[] Ratings { get; }

    /// <summary>Row-major [N, T]: the target ids as given (masked positions may hold the ignore index).</summary>
    public long[] TargetIds { get; }

    /// <summary>Row-major [N, T]: whether each token is in the loss.</summary>
    public bool[] TokenMask { get; }

    /// <summary>Number of unmasked tokens of each response (always at least 1).</summary>
    public int[] Lengths { get; }

    public double[] BestRating { get; }
    public bool[] IsBest { get; }
    public int[] BestCount { get; }
    public int[] OtherCount { get; }

    /// <summary>The hinge margin <c>M (r_best - r_i) / scale</c> of response <paramref name="i"/> (0 for best responses).</summary>
    public double MarginOf(int i, ContrastivePreferenceOptions options) =>
        IsBest[i] ? 0.0 : options.Margin * (BestRating[GroupOf[i]] - Ratings[i]) / options.RatingScale;

    /// <summary>
    /// Ranking correctness of each group from the responses' NLLs: whether a best-rated response has a strictly
    /// lower NLL than every lower-rated one; <see langword="null"/> for groups with no lower-rated response.
    /// </summary>
    public bool?[] BestHasLowestNll(ReadOnlySpan<double> nll)
    {
        var minBest = new double[GroupCount];
        var minOther = new double[GroupCount];
        Array.Fill(minBest, double.PositiveInfinity);
        Array.Fill(minOther, double.PositiveInfinity);
        for (int i = 0; i < Responses; i++)
        {
            long g = GroupOf[i];
            if (IsBest[i]) minBest[g] = Math.Min(minBest[g], nll[i]);
            else minOther[g] = Math.Min(minOther[g], nll[i]);
        }
        var result = new bool?[GroupCount];
        for (int g = 0; g < GroupCount; g++)
            result[g] = OtherCount[g] == 0 ? null : minBest[g] < minOther[g];
        return result;
    }

    /// <summary>Validates a batch and reads its small tensors to the host.</summary>
    /// <exception cref="ArgumentException">Naming the argument, shape, group or index at fault.</exception>
    public static PreferenceInputs Create(Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor? lossMask, ContrastivePreferenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (logits.dim() != 3)
            throw new ArgumentException($"logits must have shape [N, T, V], got {Shape(logits)}.", nameof(logits));
        if (logits.dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float64))
            throw new ArgumentException($"logits must be float32, bfloat16 or float64, got {logits.dtype}.", nameof(logits));
        long n = logits.shape[0], t = logits.shape[1], v = logits.shape[2];
        if (n == 0 || t == 0 || v == 0)
            throw new ArgumentException($"The batch is empty: logits have shape {Shape(logits)}.", nameof(logits));
        if (n > int.MaxValue || t > int.MaxValue || v > int.MaxValue)
            throw new ArgumentException($"logits shape {Shape(logits)} is too large.", nameof(logits));
        return Create(n, t, v, $"logits {Shape(logits)}", targets, groups, ratings, lossMask, options);
    }

    /// <summary>
    /// Validates the inputs of the fused output layer and loss: <paramref name="hidden"/> <c>[N, T, H]</c> and
    /// <paramref name="outputWeight"/> <c>[V, H]</c> of one floating type on one device, then the rest as for logits.
    /// </summary>
    /// <exception cref="ArgumentException">Naming the argument, shape, group or index at fault.</exception>
    public static PreferenceInputs Create(Tensor hidden, Tensor outputWeight, Tensor targets, Tensor groups, Tensor ratings, Tensor? lossMask, ContrastivePreferenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(outputWeight);
        if (hidden.dim() != 3)
            throw new ArgumentException($"hidden must have shape [N, T, H], got {Shape(hidden)}.", nameof(hidden));
        if (hidden.dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float64))
            throw new ArgumentException($"hidden must be float32, bfloat16 or float64, got {hidden.dtype}.", nameof(hidden));
        if (outputWeight.dim() != 2 || outputWeight.shape[1] != hidden.shape[2])
            throw new ArgumentException($"outputWeight must have shape [V, {hidden.shape[2]}] to match hidden {Shape(hidden)}, got {Shape(outputWeight)}.", nameof(outputWeight));
        if (outputWeight.dtype != hidden.dtype)
            throw new ArgumentException($"outputWeight must have the type of hidden ({hidden.dtype}), got {outputWeight.dtype}.", nameof(outputWeight));
        if (outputWeight.device_type != hidden.device_type || outputWeight.device_index != hidden.device_index)
            throw new ArgumentException($"outputWeight must be on the device of hidden ({hidden.device}), got {outputWeight.device}.", nameof(outputWeight));
        long n = hidden.shape[0], t = hidden.shape[1], h = hidden.shape[2], v = outputWeight.shape[0];
        if (n == 0 || t == 0 || h == 0)
            throw new ArgumentException($"The batch is empty: hidden has shape {Shape(hidden)}.", nameof(hidden));
        if (v == 0)
            throw new ArgumentException($"outputWeight has no rows: shape {Shape(outputWeight)}.", nameof(outputWeight));
        if (n > int.MaxValue || t > int.MaxValue || h > int.MaxValue || v > int.MaxValue)
            throw new ArgumentException($"hidden {Shape(hidden)} or outputWeight {Shape(outputWeight)} is too large.", nameof(hidden));
        return Create(n, t, v, $"hidden {Shape(hidden)}", targets, groups, ratings, lossMask, options);
    }

    /// <summary>
    /// The checks common to both entry points, for <paramref name="n"/> responses of <paramref name="t"/> tokens over
    /// a vocabulary of <paramref name="v"/>; <paramref name="source"/> names the tensor those come from, with its shape,
    /// for messages (e.g. <c>logits [2, 3, 5]</c>).
    /// </summary>
    private static PreferenceInputs Create(long n, long t, long v, string source, Tensor targets, Tensor groups, Tensor ratings, Tensor? lossMask, ContrastivePreferenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(ratings);

        if (targets.dim() != 2 || targets.shape[0] != n || targets.shape[1] != t)
            throw new ArgumentException($"targets must have shape [{n}, {t}] to match {source}, got {Shape(targets)}.", nameof(targets));
        if (!IsInteger(targets.dtype))
            throw new ArgumentException($"targets must hold integer token ids, got {targets.dtype}.", nameof(targets));
        if (groups.dim() != 1 || groups.shape[0] != n)
            throw new ArgumentException($"groups must have shape [{n}] (one group index per response), got {Shape(groups)}.", nameof(groups));
        if (!IsInteger(groups.dtype))
            throw new ArgumentException($"groups must hold integer group indices, got {groups.dtype}.", nameof(groups));
        if (ratings.dim() != 1 || ratings.shape[0] != n)
            throw new ArgumentException($"ratings must have shape [{n}] (one rating per response), got {Shape(ratings)}.", nameof(ratings));
        if (lossMask is not null && (lossMask.dim() != 2 || lossMask.shape[0] != n || lossMask.shape[1] != t))
            throw new ArgumentException($"lossMask must have shape [{n}, {t}] to match {source}, got {Shape(lossMask)}.", nameof(lossMask));

        int rows = (int)n, cols = (int)t, vocab = (int)v;
        long[] targetIds = ToHost<long>(targets, ScalarType.Int64);
        long[] groupOf = ToHost<long>(groups, ScalarType.Int64);
        double[] ratingValues = ToHost<double>(ratings, ScalarType.Float64);
        bool[] mask = lossMask is null
            ? Array.ConvertAll(targetIds, id => id != options.IgnoreIndex)
            : ToHost<bool>(lossMask.dtype == ScalarType.Bool ? lossMask : lossMask.ne(HeldScalars.Zero), ScalarType.Bool);

        for (int i = 0; i < rows; i++)
        {
            double r = ratingValues[i];
            if (!double.IsFinite(r))
                throw new ArgumentException($"ratings[{i}] is {r}; every rating must be finite.", nameof(ratings));
            if (r < options.MinRating || r > options.RatingScale)
                throw new ArgumentException($"ratings[{i}] = {r} is outside the rating scale [{options.MinRating}, {options.RatingScale}].", nameof(ratings));
        }

        long groupCount = 0;
        for (int i = 0; i < rows; i++)
        {
            if (groupOf[i] < 0)
                throw new ArgumentException($"groups[{i}] = {groupOf[i]} is negative; groups are numbered from 0.", nameof(groups));
            groupCount = Math.Max(groupCount, groupOf[i] + 1);
        }
        var seen = new bool[groupCount];
        foreach (long g in groupOf) seen[g] = true;
        int gap = Array.IndexOf(seen, false);
        if (gap >= 0)
            throw new ArgumentException($"Group {gap} has no response; groups must be numbered 0..{groupCount - 1} without gaps.", nameof(groups));

        var lengths = new int[rows];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++)
            {
                int k = i * cols + j;
                if (!mask[k]) continue;
                lengths[i]++;
                if (targetIds[k] < 0 || targetIds[k] >= vocab)
                    throw new ArgumentException($"targets[{i}, {j}] = {targetIds[k]} is not a token id of the vocabulary of size {vocab}.", nameof(targets));
            }
            if (lengths[i] == 0)
                throw new ArgumentException($"Response {i} (group {groupOf[i]}) has every token masked; each response needs at least one token in the loss.", lossMask is null ? nameof(targets) : nameof(lossMask));
        }

        return new PreferenceInputs(rows, cols, vocab, (int)groupCount, groupOf, ratingValues, targetIds, mask, lengths);
    }

    private static bool IsInteger(ScalarType type) =>
        type is ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte;

    private static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";

    private static T[] ToHost<T>(Tensor t, ScalarType type) where T : unmanaged
    {
        using var host = t.detach().to(type, CPU).contiguous();
        return host.data<T>().ToArray();
    }
}
