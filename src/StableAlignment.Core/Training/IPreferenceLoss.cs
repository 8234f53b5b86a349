using TorchSharp;

namespace StableAlignment.Core.Training;

/// <summary>
/// The batched Stable Alignment objective. Implemented by <see cref="ContrastivePreferenceLoss"/> (TorchSharp
/// reference path) and by the CUDA kernels, so training switches implementations with one option.
/// </summary>
/// <remarks>
/// <para>Inputs, for <c>N</c> responses of <c>G</c> queries padded to <c>T</c> tokens over a vocabulary of <c>V</c>:</para>
/// <list type="bullet">
/// <item><c>logits</c> <c>[N, T, V]</c>, float32, bfloat16 or float64. <c>logits[n, t]</c> predicts <c>targets[n, t]</c>:
/// the caller has already shifted targets by one position.</item>
/// <item><c>targets</c> <c>[N, T]</c> int64 token ids.</item>
/// <item><c>groups</c> <c>[N]</c> int64: the query of each response, numbered 0..G-1 with no gaps; groups may differ in size.</item>
/// <item><c>ratings</c> <c>[N]</c>: each response's rating, within [MinRating, RatingScale].</item>
/// <item><c>lossMask</c> <c>[N, T]</c> bool or numeric (non-zero = in the loss), or <see langword="null"/> to exclude
/// the tokens whose target is <see cref="ContrastivePreferenceOptions.IgnoreIndex"/>.</item>
/// </list>
/// </remarks>
public interface IPreferenceLoss
{
    /// <summary>The validated options this loss was created with.</summary>
    ContrastivePreferenceOptions Options { get; }

    /// <summary>Computes the loss and its reductions for one batch.</summary>
    /// <param name="logits">Logits <c>[N, T, V]</c>.</param>
    /// <param name="targets">Target ids <c>[N, T]</c>.</param>
    /// <param name="groups">Group (query) index of each response <c>[N]</c>.</param>
    /// <param name="ratings">Rating of each response <c>[N]</c>.</param>
    /// <param name="lossMask">Optional loss mask <c>[N, T]</c>.</param>
    /// <returns>The differentiable loss and its per-group and per-response parts. Dispose it after the step.</returns>
    PreferenceLossResult Compute(torch.Tensor logits, torch.Tensor targets, torch.Tensor groups, torch.Tensor ratings, torch.Tensor? lossMask = null);
}
