using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// A preference loss that needs, besides the batch, each response's NLL under a frozen reference model (DPO's
/// <c>pi_ref</c>). The trainer supplies it from <see cref="TrainingStage.Reference"/>.
/// </summary>
public interface IReferencePreferenceLoss : IPreferenceLoss
{
    /// <summary>Computes the loss for one batch, given the reference model's NLLs.</summary>
    /// <param name="logits">Logits <c>[N, T, V]</c>.</param>
    /// <param name="targets">Target ids <c>[N, T]</c>.</param>
    /// <param name="groups">Group (query) index of each response <c>[N]</c>.</param>
    /// <param name="ratings">Rating of each response <c>[N]</c>.</param>
    /// <param name="referenceNll">Each response's summed token NLL under the reference model <c>[N]</c>, on the same tokens and mask.</param>
    /// <param name="lossMask">Optional loss mask <c>[N, T]</c>.</param>
    /// <returns>The differentiable loss and its parts. Dispose it after the step.</returns>
    PreferenceLossResult ComputeWithReference(Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor referenceNll, Tensor? lossMask = null);
}
