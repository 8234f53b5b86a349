using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>
/// Keys and values of the positions already processed, per layer, so generation feeds one new token per step.
/// The cache owns its tensors (detached from any dispose scope) and frees them on <see cref="Dispose"/>.
/// </summary>
internal sealed class KeyValueCache : IDisposable
{
    private readonly Tensor?[] _keys;
    private readonly Tensor?[] _values;

    public KeyValueCache(int layers)
    {
        _keys = new Tensor?[layers];
        _values = new Tensor?[layers];
    }

    /// <summary>Number of positions cached (the position of the next token).</summary>
    public long Length => _keys[0]?.shape[2] ?? 0;

    /// <summary>Appends the new keys and values <c>[B, Hkv, T, d]</c> of one layer and returns the full ones.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor keys, Tensor values)
    {
        _keys[layer] = Concat(_keys[layer], keys);
        _values[layer] = Concat(_values[layer], values);
        return (_keys[layer]!, _values[layer]!);
    }

    private static Tensor Concat(Tensor? old, Tensor added)
    {
        var joined = old is null ? added.detach().clone() : cat([old, added.detach()], 2);
        old?.Dispose();
        return joined.DetachFromDisposeScope();
    }

    public void Dispose()
    {
        for (var i = 0; i < _keys.Length; i++)
        {
            _keys[i]?.Dispose();
            _values[i]?.Dispose();
            _keys[i] = _values[i] = null;
        }
    }
}
