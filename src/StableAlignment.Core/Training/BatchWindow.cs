using StableAlignment.Core.Data;

namespace StableAlignment.Core.Training;

/// <summary>
/// A fixed number of batches cut from the endless stream of another source's epochs (epoch 0's batches, then epoch
/// 1's, and so on): epoch <c>e</c> of the window is batches <c>first + e * count</c> to <c>first + (e + 1) * count - 1</c>
/// of that stream. This is how a stage gets an exact step budget, and how two stages share one pass over the data.
/// </summary>
/// <remarks>Each epoch depends only on its number, as the trainer's resume needs, because the inner source's epochs do.</remarks>
public sealed class BatchWindow : IPreferenceBatchSource
{
    private readonly IPreferenceBatchSource _inner;
    private readonly int _first;
    private readonly int _count;
    private readonly int _innerCount;

    /// <summary>Creates the window.</summary>
    /// <param name="inner">The source; it must know its <see cref="IPreferenceBatchSource.Count"/> and have at least one batch.</param>
    /// <param name="first">Index of the first batch in the stream of the inner source's epochs.</param>
    /// <param name="count">Batches per epoch of the window.</param>
    /// <exception cref="ArgumentException">The inner source does not know its count or is empty, or an index is out of range.</exception>
    public BatchWindow(IPreferenceBatchSource inner, int first, int count)
    {
        _inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _innerCount = inner.Count ?? throw new ArgumentException("The inner source must know its batch count.", nameof(inner));
        if (_innerCount < 1) throw new ArgumentException("The inner source has no batches.", nameof(inner));
        if (first < 0) throw new ArgumentException($"first must not be negative, got {first}.", nameof(first));
        if (count < 1) throw new ArgumentException($"count must be at least 1, got {count}.", nameof(count));
        _first = first;
        _count = count;
    }

    /// <inheritdoc />
    public int? Count => _count;

    /// <inheritdoc />
    public IEnumerable<PreferenceBatch> Batches(int epoch)
    {
        long start = _first + (long)epoch * _count, end = start + _count;
        for (long innerEpoch = start / _innerCount; innerEpoch * _innerCount < end; innerEpoch++)
        {
            long position = innerEpoch * _innerCount;
            foreach (var batch in _inner.Batches(checked((int)innerEpoch)))
            {
                if (position >= start && position < end)
                {
                    yield return batch;
                }
                else
                {
                    batch.Dispose();
                }
                position++;
            }
        }
    }
}
