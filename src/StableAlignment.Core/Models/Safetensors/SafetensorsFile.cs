using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>One tensor to write: its name, shape and a producer called once, when its bytes are written.</summary>
internal sealed record SafetensorsEntry(string Name, long[] Shape, Func<Tensor> Produce)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header mapping each name to
/// <c>dtype</c>, <c>shape</c> and <c>data_offsets</c> (plus <c>__metadata__</c>), then the raw little-endian data.
/// </summary>
internal static class SafetensorsFile
{
    private const string MetadataKey = "__metadata__";

    public static string DTypeName(ExportDType dtype) => dtype switch
    {
        ExportDType.F32 => "F32",
        ExportDType.F16 => "F16",
        ExportDType.BF16 => "BF16",
        _ => throw new ArgumentException($"dtype {dtype} cannot be stored in safetensors; use f32, f16 or bf16.", nameof(dtype)),
    };

    private static ScalarType ScalarTypeOf(ExportDType dtype) => dtype switch
    {
        ExportDType.F32 => ScalarType.Float32,
        ExportDType.F16 => ScalarType.Float16,
        ExportDType.BF16 => ScalarType.BFloat16,
        _ => throw new ArgumentException($"dtype {dtype} cannot be stored in safetensors; use f32, f16 or bf16.", nameof(dtype)),
    };

    public static int ElementSize(ExportDType dtype) => dtype == ExportDType.F32 ? 4 : 2;

    /// <summary>
    /// Writes <paramref name="entries"/> in order; each tensor is produced, converted and written, then disposed, and
    /// <paramref name="written"/> is told its name. A cancelled or failed write removes the partial file.
    /// </summary>
    public static void Write(string path, IReadOnlyList<SafetensorsEntry> entries, ExportDType dtype, IReadOnlyDictionary<string, string>? metadata = null,
        Action<string>? written = null, CancellationToken cancellationToken = default)
    {
        try
        {
            WriteFile(path, entries, dtype, metadata, written, cancellationToken);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    private static void WriteFile(string path, IReadOnlyList<SafetensorsEntry> entries, ExportDType dtype, IReadOnlyDictionary<string, string>? metadata,
        Action<string>? written, CancellationToken cancellationToken)
    {
        var type = ScalarTypeOf(dtype);
        var header = new JsonObject();
        var meta = new JsonObject { ["format"] = "pt" };
        foreach (var (k, v) in metadata ?? new Dictionary<string, string>()) meta[k] = v;
        header[MetadataKey] = meta;
        long offset = 0;
        foreach (var e in entries)
        {
            long bytes = e.ElementCount * ElementSize(dtype);
            header[e.Name] = new JsonObject
            {
                ["dtype"] = DTypeName(dtype),
                ["shape"] = new JsonArray([.. e.Shape.Select(d => (JsonNode)d)]),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }

        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        // The data starts 8-byte aligned, as the reference writer pads the header with spaces.
        int padded = (json.Length + 7) / 8 * 8;
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
        stream.Write(length);
        stream.Write(json);
        for (int i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
        foreach (var e in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var value = e.Produce().detach().to_type(type).contiguous().cpu();
            if (!value.shape.SequenceEqual(e.Shape))
                throw new InvalidOperationException($"Tensor '{e.Name}' has shape [{string.Join(", ", value.shape)}], not the declared [{string.Join(", ", e.Shape)}].");
            stream.Write(value.bytes);
            written?.Invoke(e.Name);
        }
    }

    /// <summary>Reads the header of a safetensors file: name to (dtype, shape, start, end) of its data, relative to the data section.</summary>
    public static (Dictionary<string, (string DType, long[] Shape, long Start, long End)> Tensors, long DataStart) ReadHeader(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> length = stackalloc byte[8];
        stream.ReadExactly(length);
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(length);
        if (size == 0 || size > 100_000_000 || (long)size > stream.Length - 8)
            throw new InvalidDataException($"'{path}' is not a safetensors file: header length {size} does not fit the file.");
        var json = new byte[size];
        stream.ReadExactly(json);
        var tensors = new Dictionary<string, (string, long[], long, long)>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(json);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == MetadataKey) continue;
                var offsets = p.Value.GetProperty("data_offsets");
                tensors[p.Name] = (p.Value.GetProperty("dtype").GetString()!,
                    [.. p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64())],
                    offsets[0].GetInt64(), offsets[1].GetInt64());
            }
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new InvalidDataException($"'{path}' has an invalid safetensors header: {ex.Message}", ex);
        }
        return (tensors, 8 + (long)size);
    }

    /// <summary>Reads every tensor of a file as float32 (F32, F16 and BF16 are accepted).</summary>
    public static Dictionary<string, Tensor> ReadAll(string path)
    {
        var (header, dataStart) = ReadHeader(path);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var stream = File.OpenRead(path);
        foreach (var (name, (dtype, shape, start, end)) in header)
        {
            var type = dtype switch
            {
                "F32" => ScalarType.Float32,
                "F16" => ScalarType.Float16,
                "BF16" => ScalarType.BFloat16,
                _ => throw new InvalidDataException($"'{path}': tensor '{name}' has dtype {dtype}; only F32, F16 and BF16 are read."),
            };
            long count = shape.Aggregate(1L, (a, b) => a * b);
            if (end - start != count * (type == ScalarType.Float32 ? 4 : 2))
                throw new InvalidDataException($"'{path}': tensor '{name}' spans {end - start} bytes, not the {count} elements of its shape.");
            var bytes = new byte[end - start];
            stream.Position = dataStart + start;
            stream.ReadExactly(bytes);
            var raw = empty(shape, type);
            bytes.CopyTo(raw.bytes);
            if (type == ScalarType.Float32)
            {
                result[name] = raw;
            }
            else
            {
                result[name] = raw.to_type(ScalarType.Float32);
                raw.Dispose();
            }
        }
        return result;
    }
}
