using System.Runtime.InteropServices;
using System.Text;

namespace StableAlignment.Core.Models;

/// <summary>ggml tensor types written here.</summary>
internal enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q8_0 = 8,
}

/// <summary>
/// Writes GGUF version 3 (ggml <c>docs/gguf.md</c>): magic, version, tensor and metadata counts, typed metadata,
/// tensor infos with dimensions in ggml's order (innermost first, the reverse of PyTorch's), then the tensor data,
/// each piece aligned to <c>general.alignment</c> (32).
/// </summary>
internal sealed class GgufWriter
{
    public const int Alignment = 32;
    public const int Q8BlockSize = 32;

    private enum ValueType : uint
    {
        UInt32 = 4,
        Int32 = 5,
        Float32 = 6,
        Bool = 7,
        String = 8,
        Array = 9,
    }

    private readonly List<(string Key, Action<BinaryWriter> Write)> _metadata = [];
    private readonly List<(string Name, long[] Shape, GgmlType Type, Func<float[]> Values)> _tensors = [];

    public void Add(string key, string value) => _metadata.Add((key, w => { Type(w, ValueType.String); Str(w, value); }));

    public void Add(string key, uint value) => _metadata.Add((key, w => { Type(w, ValueType.UInt32); w.Write(value); }));

    public void Add(string key, float value) => _metadata.Add((key, w => { Type(w, ValueType.Float32); w.Write(value); }));

    public void Add(string key, bool value) => _metadata.Add((key, w => { Type(w, ValueType.Bool); w.Write(value); }));

    public void Add(string key, IReadOnlyList<string> values) => _metadata.Add((key, w =>
    {
        Type(w, ValueType.Array);
        Type(w, ValueType.String);
        w.Write((ulong)values.Count);
        foreach (var v in values) Str(w, v);
    }));

    public void Add(string key, IReadOnlyList<int> values) => _metadata.Add((key, w =>
    {
        Type(w, ValueType.Array);
        Type(w, ValueType.Int32);
        w.Write((ulong)values.Count);
        foreach (var v in values) w.Write(v);
    }));

    /// <summary>Adds a tensor of PyTorch shape <paramref name="shape"/> (row-major), encoded as <paramref name="type"/> when written.</summary>
    public void AddTensor(string name, long[] shape, GgmlType type, Func<float[]> values)
    {
        if (type == GgmlType.Q8_0 && shape[^1] % Q8BlockSize != 0)
            throw new ArgumentException($"Tensor '{name}': Q8_0 needs rows of a multiple of {Q8BlockSize} values, got {shape[^1]}.", nameof(type));
        _tensors.Add((name, shape, type, values));
    }

    public int TensorCount => _tensors.Count;

    public static long ByteSize(long[] shape, GgmlType type)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        return type switch
        {
            GgmlType.F32 => n * 4,
            GgmlType.F16 => n * 2,
            GgmlType.Q8_0 => n / Q8BlockSize * (2 + Q8BlockSize),
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
        };
    }

    /// <summary>Writes the file; <paramref name="written"/> is told each tensor's name. A cancelled or failed write removes the partial file.</summary>
    public void Write(string path, Action<string>? written = null, CancellationToken cancellationToken = default)
    {
        try
        {
            WriteFile(path, written, cancellationToken);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    private void WriteFile(string path, Action<string>? written, CancellationToken cancellationToken)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(0x46554747u); // "GGUF"
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count + 1);
        Str(w, "general.alignment");
        Type(w, ValueType.UInt32);
        w.Write((uint)Alignment);
        foreach (var (key, write) in _metadata)
        {
            Str(w, key);
            write(w);
        }

        long offset = 0;
        foreach (var (name, shape, type, _) in _tensors)
        {
            Str(w, name);
            w.Write((uint)shape.Length);
            for (int d = shape.Length - 1; d >= 0; d--) w.Write((ulong)shape[d]);
            w.Write((uint)type);
            w.Write((ulong)offset);
            offset = Align(offset + ByteSize(shape, type));
        }
        Pad(w);
        foreach (var (name, shape, type, values) in _tensors)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var data = values();
            if (data.LongLength != shape.Aggregate(1L, (a, b) => a * b))
                throw new InvalidOperationException($"Tensor '{name}' produced {data.Length} values for shape [{string.Join(", ", shape)}].");
            switch (type)
            {
                case GgmlType.F32:
                    w.Write(MemoryMarshal.AsBytes(data.AsSpan()));
                    break;
                case GgmlType.F16:
                    var half = new Half[data.Length];
                    for (int i = 0; i < data.Length; i++) half[i] = (Half)data[i];
                    w.Write(MemoryMarshal.AsBytes(half.AsSpan()));
                    break;
                case GgmlType.Q8_0:
                    w.Write(QuantizeQ8_0(data));
                    break;
            }
            Pad(w);
            written?.Invoke(name);
        }
    }

    /// <summary>
    /// ggml's reference Q8_0 (<c>quantize_row_q8_0_ref</c>, gguf-py's <c>quants.py</c>): per block of 32, <c>d = max|x| / 127</c>
    /// stored as float16, <c>q = round(x / d)</c> rounding half away from zero, computed with the float32 <c>d</c>.
    /// </summary>
    public static byte[] QuantizeQ8_0(ReadOnlySpan<float> values)
    {
        int blocks = values.Length / Q8BlockSize;
        var output = new byte[blocks * (2 + Q8BlockSize)];
        for (int b = 0; b < blocks; b++)
        {
            var block = values.Slice(b * Q8BlockSize, Q8BlockSize);
            float amax = 0;
            foreach (var v in block) amax = MathF.Max(amax, MathF.Abs(v));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            int o = b * (2 + Q8BlockSize);
            BitConverter.TryWriteBytes(output.AsSpan(o, 2), (Half)d);
            for (int j = 0; j < Q8BlockSize; j++)
                output[o + 2 + j] = (byte)(sbyte)MathF.Round(block[j] * id, MidpointRounding.AwayFromZero);
        }
        return output;
    }

    private static long Align(long offset) => (offset + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter w)
    {
        w.Flush();
        long position = w.BaseStream.Position;
        for (long i = position; i < Align(position); i++) w.Write((byte)0);
    }

    private static void Type(BinaryWriter w, ValueType type) => w.Write((uint)type);

    private static void Str(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }
}
