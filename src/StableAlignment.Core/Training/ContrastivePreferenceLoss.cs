using TorchSharp;

namespace StableAlignment.Core.Training;

/// <summary>The TorchSharp reference path of the contrastive preference loss.</summary>
public sealed class ContrastivePreferenceLoss : IPreferenceLoss
{
    /// <summary>Creates the loss with validated options.</summary>
    public ContrastivePreferenceLoss(ContrastivePreferenceOptions? options = null) =>
        Options = (options ?? new ContrastivePreferenceOptions()).Validate();

    /// <inheritdoc />
    public ContrastivePreferenceOptions Options { get; }

    /// <inheritdoc />
    public PreferenceLossResult Compute(torch.Tensor logits, torch.Tensor targets, torch.Tensor groups, torch.Tensor ratings, torch.Tensor? lossMask = null) =>
        throw new NotImplementedException("being written");
}
