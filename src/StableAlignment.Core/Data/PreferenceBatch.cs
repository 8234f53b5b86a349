using TorchSharp;

namespace StableAlignment.Core.Data;

/// <summary>
/// A padded batch of responses from many queries: exactly what <see cref="Training.IPreferenceLoss"/> and the
/// model consume. Row <c>n</c> is one rendered prompt + response; <c>Targets</c> are already shifted by one
/// position so that the logits at position <c>t</c> predict <c>Targets[n, t]</c>.
/// </summary>
public sealed partial class PreferenceBatch : IDisposable
{
    /// <summary>Token ids <c>[N, T]</c> int64 (padding uses the tokenizer's pad or end-of-text id).</summary>
    public required torch.Tensor InputIds { get; init; }

    /// <summary>Shifted target ids <c>[N, T]</c> int64; excluded positions hold <see cref="IgnoreIndex"/>.</summary>
    public required torch.Tensor Targets { get; init; }

    /// <summary>Loss mask <c>[N, T]</c> bool: true on response tokens, false on prompt tokens and padding.</summary>
    public required torch.Tensor LossMask { get; init; }

    /// <summary>Group (query) index of each row <c>[N]</c> int64, numbered 0..G-1 without gaps.</summary>
    public required torch.Tensor Groups { get; init; }

    /// <summary>Rating of each row <c>[N]</c> float32.</summary>
    public required torch.Tensor Ratings { get; init; }

    /// <summary>The rendered query of each group, indexed by group.</summary>
    public required IReadOnlyList<string> Queries { get; init; }

    /// <summary>Number of padding positions in <see cref="InputIds"/>.</summary>
    public required long PaddingTokens { get; init; }

    /// <summary>Share of <see cref="InputIds"/> positions that are padding, in [0, 1].</summary>
    public double PaddingShare => InputIds.numel() == 0 ? 0 : (double)PaddingTokens / InputIds.numel();

    /// <inheritdoc />
    public void Dispose()
    {
        InputIds.Dispose();
        Targets.Dispose();
        LossMask.Dispose();
        Groups.Dispose();
        Ratings.Dispose();
    }
}
