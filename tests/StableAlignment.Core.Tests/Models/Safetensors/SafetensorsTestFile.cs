using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using StableAlignment.Core.Models;

namespace StableAlignment.Core.Tests.Models;

/// <summary>
/// A safetensors writer and parser written for the tests from the format's description (8-byte little-endian header
/// length, JSON header of dtype / shape / data_offsets, then little-endian data); it shares no code with the library.
/// </summary>
internal static class SafetensorsTestFile
{
    public sealed record Entry(string DType, long[] Shape, double[] Values);

    /// <summary>Every tensor of a file with its dtype and shape, values widened to double (F32, F16, BF16); and the metadata.</summary>
    public static (Dictionary<string, Entry> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        var tensors = new Dictionary<string, Entry>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        long dataStart = 8 + headerLength;
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                foreach (var m in p.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString()!;
                continue;
            }
            var dtype = p.Value.GetProperty("dtype").GetString()!;
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            long start = p.Value.GetProperty("data_offsets")[0].GetInt64(), end = p.Value.GetProperty("data_offsets")[1].GetInt64();
            int size = dtype == "F32" ? 4 : 2;
            var span = bytes.AsSpan((int)(dataStart + start), (int)(end - start));
            var values = new double[span.Length / size];
            for (int i = 0; i < values.Length; i++)
            {
                var item = span.Slice(i * size, size);
                values[i] = dtype switch
                {
                    "F32" => BinaryPrimitives.ReadSingleLittleEndian(item),
                    "F16" => (double)BinaryPrimitives.ReadHalfLittleEndian(item),
                    "BF16" => BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(item) << 16),
                    _ => throw new InvalidDataException($"dtype {dtype}"),
                };
            }
            tensors[p.Name] = new Entry(dtype, shape, values);
        }
        return (tensors, metadata);
    }

    /// <summary>The tensors a Hugging Face LLaMA/Qwen2 checkpoint of <paramref name="c"/> holds, with their shapes.</summary>
    public static Dictionary<string, long[]> HuggingFaceShapes(CausalLanguageModelConfig c)
    {
        var s = new Dictionary<string, long[]> { ["model.embed_tokens.weight"] = [c.VocabSize, c.HiddenSize], ["model.norm.weight"] = [c.HiddenSize] };
        if (!c.TieWordEmbeddings) s["lm_head.weight"] = [c.VocabSize, c.HiddenSize];
        int q = c.NumHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim;
        for (var l = 0; l < c.NumLayers; l++)
        {
            var p = $"model.layers.{l}.";
            s[p + "input_layernorm.weight"] = [c.HiddenSize];
            s[p + "post_attention_layernorm.weight"] = [c.HiddenSize];
            s[p + "self_attn.q_proj.weight"] = [q, c.HiddenSize];
            s[p + "self_attn.k_proj.weight"] = [kv, c.HiddenSize];
            s[p + "self_attn.v_proj.weight"] = [kv, c.HiddenSize];
            s[p + "self_attn.o_proj.weight"] = [c.HiddenSize, q];
            if (c.AttentionBias)
            {
                s[p + "self_attn.q_proj.bias"] = [q];
                s[p + "self_attn.k_proj.bias"] = [kv];
                s[p + "self_attn.v_proj.bias"] = [kv];
            }
            if (c.AttentionOutputBias) s[p + "self_attn.o_proj.bias"] = [c.HiddenSize];
            s[p + "mlp.gate_proj.weight"] = [c.IntermediateSize, c.HiddenSize];
            s[p + "mlp.up_proj.weight"] = [c.IntermediateSize, c.HiddenSize];
            s[p + "mlp.down_proj.weight"] = [c.HiddenSize, c.IntermediateSize];
            if (c.MlpBias)
            {
                s[p + "mlp.gate_proj.bias"] = [c.IntermediateSize];
                s[p + "mlp.up_proj.bias"] = [c.IntermediateSize];
                s[p + "mlp.down_proj.bias"] = [c.HiddenSize];
            }
        }
        return s;
    }

    /// <summary>Random weights in Hugging Face naming, exact in float32: norms near 1, everything else in [-0.2, 0.2].</summary>
    public static Dictionary<string, double[]> RandomWeights(Dictionary<string, long[]> shapes, int seed, bool bfloat16 = false)
    {
        var rng = new Random(seed);
        return shapes.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => Enumerable.Range(0, (int)kv.Value.Aggregate(1L, (a, b) => a * b))
            .Select(_ => kv.Key.Contains("norm", StringComparison.Ordinal) ? 1 + 0.2 * (rng.NextDouble() - 0.5) : 0.4 * (rng.NextDouble() - 0.5))
            .Select(v => bfloat16 ? BFloat16Value(v) : (double)(float)v).ToArray());
    }

    /// <summary>The bfloat16 bits of <paramref name="v"/>: the top half of its float32 bits (values are made exact first).</summary>
    public static ushort BFloat16Bits(double v) => (ushort)(BitConverter.SingleToUInt32Bits((float)v) >> 16);

    public static double BFloat16Value(double v) => BitConverter.UInt32BitsToSingle((uint)BFloat16Bits(v) << 16);

    /// <summary>A minimal safetensors writer (8-byte header length, JSON header, little-endian F32 or BF16 data).</summary>
    public static void Write(string path, Dictionary<string, (long[] Shape, double[] Values)> tensors, bool bfloat16 = false)
    {
        var size = bfloat16 ? 2L : 4L;
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, (shape, values)) in tensors)
        {
            header[name] = new Dictionary<string, object> { ["dtype"] = bfloat16 ? "BF16" : "F32", ["shape"] = shape, ["data_offsets"] = new[] { offset, offset + values.Length * size } };
            offset += values.Length * size;
        }
        header["__metadata__"] = new Dictionary<string, string> { ["format"] = "pt" };
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var w = new BinaryWriter(File.Create(path));
        w.Write((ulong)json.Length);
        w.Write(json);
        foreach (var (_, (_, values)) in tensors)
            foreach (var v in values)
            {
                if (bfloat16) w.Write(BFloat16Bits(v));
                else w.Write((float)v);
            }
    }
}
