
namespace StableAlignment.Core.Data;

/// <summary>
/// The batches of one training stage (or of its held-out queries). The trainer owns and disposes every batch it
/// receives, so implementations create fresh tensors on each enumeration.
/// </summary>
/// <remarks>
/// Resuming a run re-enumerates <see cref="Batches"/> for the saved epoch and skips the batches already trained on,
/// so an epoch's order must depend only on the epoch number (shuffle with a seed derived from it).
/// </remarks>
public interface IPreferenceBatchSource
{
    /// <summary>The batches of <paramref name="epoch"/> (0-based), in a deterministic order.</summary>
    /// <param name="epoch">The epoch number.</param>
    /// <returns>The batches; each is disposed by the consumer.</returns>
    IEnumerable<PreferenceBatch> Batches(int epoch);

    /// <summary>Number of batches per epoch, or null when unknown (the trainer then counts them once).</summary>
    int? Count { get; }
}
