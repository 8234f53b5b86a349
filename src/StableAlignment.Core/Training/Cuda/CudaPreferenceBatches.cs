namespace StableAlignment.Core.Training;

/// <summary>
/// A batch in host arrays for <see cref="CudaContrastivePreferenceLoss"/>: copied to the GPU, computed, and copied back.
/// Shapes as in <see cref="Training.IPreferenceLoss"/>, flattened row-major.
/// </summary>
/// <param name="Logits">float32 logits <c>[N·T·V]</c>.</param>
/// <param name="Responses">N.</param>
/// <param name="Tokens">T.</param>
/// <param name="Vocabulary">V.</param>
/// <param name="Targets">Target ids <c>[N·T]</c>.</param>
/// <param name="Groups">Query index of each response <c>[N]</c>, 0..G-1 with no gaps.</param>
/// <param name="Ratings">Rating of each response <c>[N]</c>.</param>
/// <param name="LossMask">Tokens in the loss <c>[N·T]</c>, or <see langword="null"/> to exclude the targets equal to the ignore index.</param>
public sealed record CudaPreferenceHostBatch(
    ReadOnlyMemory<float> Logits, int Responses, int Tokens, int Vocabulary,
    ReadOnlyMemory<long> Targets, ReadOnlyMemory<long> Groups, ReadOnlyMemory<double> Ratings, ReadOnlyMemory<bool>? LossMask = null)
{
    /// <summary>Checks every length against N, T and V and throws <see cref="ArgumentException"/> naming the first mismatch.</summary>
    internal void Validate()
    {
        PreferenceShapeChecks.Sizes(Responses, Tokens, Vocabulary);
        PreferenceShapeChecks.Length(nameof(Logits), Logits.Length, (long)Responses * Tokens * Vocabulary);
        PreferenceShapeChecks.Length(nameof(Targets), Targets.Length, (long)Responses * Tokens);
        PreferenceShapeChecks.Length(nameof(Groups), Groups.Length, Responses);
        PreferenceShapeChecks.Length(nameof(Ratings), Ratings.Length, Responses);
        if (LossMask is { } mask) PreferenceShapeChecks.Length(nameof(LossMask), mask.Length, (long)Responses * Tokens);
    }
}

/// <summary>
/// A batch already on the GPU, as device pointers valid in the primary context of device 0 (for example the
/// storage of TorchSharp CUDA tensors). Every array is dense and row-major.
/// </summary>
/// <param name="Logits">Logits <c>[N, T, V]</c> of <paramref name="LogitsType"/>.</param>
/// <param name="LogitsType">Element type of the logits and of the gradient.</param>
/// <param name="Responses">N.</param>
/// <param name="Tokens">T.</param>
/// <param name="Vocabulary">V.</param>
/// <param name="Targets">int64 target ids <c>[N, T]</c>.</param>
/// <param name="Groups">int64 query index of each response <c>[N]</c>.</param>
/// <param name="Ratings">float64 rating of each response <c>[N]</c>.</param>
/// <param name="LossMask">uint8 mask <c>[N, T]</c> (non-zero = in the loss), or 0 to exclude the targets equal to the ignore index.</param>
/// <param name="GradLogits">Where to write d(loss)/d(logits) <c>[N, T, V]</c> of <paramref name="LogitsType"/>, or 0 to skip the backward pass.</param>
public readonly record struct CudaPreferenceDeviceBatch(
    nint Logits, CudaLogitsType LogitsType, int Responses, int Tokens, int Vocabulary,
    nint Targets, nint Groups, nint Ratings, nint LossMask = 0, nint GradLogits = 0);

/// <summary>Host copies of what one evaluation of the CUDA loss produced.</summary>
/// <param name="Loss">The scalar loss.</param>
/// <param name="ResponseNll">Each response's NLL <c>[N]</c>.</param>
/// <param name="SftTerms">Each group's SFT term <c>[G]</c>.</param>
/// <param name="RankingTerms">Each group's ranking term <c>[G]</c> before the weight.</param>
/// <param name="BestHasLowestNll">Per group: whether a best-rated response has the lowest NLL, or <see langword="null"/> when the group cannot be ranked.</param>
/// <param name="GradLogits">d(loss)/d(logits) <c>[N·T·V]</c> when asked for (host batches), else <see langword="null"/>.</param>
public sealed record CudaPreferenceLossOutputs(
    float Loss, IReadOnlyList<float> ResponseNll, IReadOnlyList<float> SftTerms, IReadOnlyList<float> RankingTerms,
    IReadOnlyList<bool?> BestHasLowestNll, float[]? GradLogits);

internal static class PreferenceShapeChecks
{
    public static void Sizes(int responses, int tokens, int vocabulary)
    {
        if (responses <= 0) throw new ArgumentException($"Responses must be positive, got {responses}.", nameof(responses));
        if (tokens <= 0) throw new ArgumentException($"Tokens must be positive, got {tokens}.", nameof(tokens));
        if (vocabulary <= 0) throw new ArgumentException($"Vocabulary must be positive, got {vocabulary}.", nameof(vocabulary));
    }

    public static void Length(string name, long actual, long expected)
    {
        if (actual != expected) throw new ArgumentException($"{name} has {actual} elements; N, T and V call for {expected}.", name);
    }
}
