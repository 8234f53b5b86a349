using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// Persistent scratch buffers of one loss object, reused across chunks and steps. On these VMs the first touch of
/// fresh memory costs about 12 µs per 4 KB page (a new 262 MB buffer: 560-760 ms, measured), far more than the
/// arithmetic done in it, so chunk buffers are allocated once and handed out again; each grows to the largest size
/// asked for and is freed on <see cref="Dispose"/>.
/// </summary>
/// <remarks>
/// A buffer's contents are undefined when handed out. Buffers are keyed by name, element type and device; a user
/// must be done with a buffer before asking for the same one again (the loss uses them within one forward or one
/// backward pass, which never overlap on one loss object).
/// </remarks>
internal sealed class LossWorkspaces : IDisposable
{
    private readonly Dictionary<(string Name, ScalarType Type, string Device), Tensor> _buffers = [];
    private readonly Lock _lock = new();
    private bool _disposed;

    /// <summary>A 1-D view of at least <paramref name="elements"/> elements of the named buffer (contents undefined).</summary>
    public Tensor Get(string name, ScalarType type, Device device, long elements)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var key = (name, type, device.ToString());
            if (!_buffers.TryGetValue(key, out var buffer) || buffer.NumberOfElements < elements)
            {
                buffer?.Dispose();
                // Owned here, not by the caller's dispose scope: it outlives the call.
                buffer = torch.empty(Math.Max(1, elements), type, device).DetachFromDisposeScope();
                _buffers[key] = buffer;
            }
            return buffer.narrow(0, 0, elements);
        }
    }

    /// <summary>Bytes held by every buffer.</summary>
    public long Bytes
    {
        get
        {
            lock (_lock) return _buffers.Values.Sum(b => b.NumberOfElements * b.ElementSize);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var b in _buffers.Values) b.Dispose();
            _buffers.Clear();
        }
    }
}
