using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;
using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

// Export to a Hugging Face model folder that transformers, vLLM and FromHuggingFace load.
public sealed partial class CausalLanguageModel
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>
    /// Writes a Hugging Face model folder: <c>config.json</c> (<c>LlamaForCausalLM</c>, or <c>Qwen2ForCausalLM</c> for
    /// query/key/value biases without an output bias), <c>model.safetensors</c> in Hugging Face's tensor names (sharded
    /// with <c>model.safetensors.index.json</c> above <see cref="ModelExportOptions.MaxShardBytes"/>),
    /// <c>generation_config.json</c> and, with a tokenizer, <c>tokenizer.json</c> and <c>tokenizer_config.json</c>
    /// (with the chat template). A LoRA model is written with its adapters merged (see <see cref="SaveLoraAdapter"/> for
    /// the adapter alone).
    /// </summary>
    /// <param name="directory">Target folder, created when missing.</param>
    /// <param name="dtype">F32, BF16 or F16.</param>
    /// <param name="tokenizer">The model's tokenizer; null writes no tokenizer files.</param>
    /// <param name="options">Export settings; null for the defaults.</param>
    /// <param name="progress">Told after each tensor is written.</param>
    /// <param name="cancellationToken">Checked before each tensor; a cancelled export leaves no partial weights file.</param>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is Q8_0, or the options are invalid.</exception>
    public void SaveHuggingFace(string directory, ExportDType dtype = ExportDType.F32, Tokenizer? tokenizer = null, ModelExportOptions? options = null,
        IProgress<ExportProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (dtype == ExportDType.Q8_0) throw new ArgumentException("Q8_0 is a GGUF type; Hugging Face exports take f32, bf16 or f16.", nameof(dtype));
        options = (options ?? new ModelExportOptions()).Validate();
        Directory.CreateDirectory(directory);

        var vocabulary = tokenizer is null ? null
            : ExportVocabulary.For(tokenizer, options.TokenizerFile, options.Vocabulary ?? VocabularyLayout.FullInner, Config.VocabSize);
        var config = vocabulary?.RowSource is { } rows ? Config with { VocabSize = rows.Length } : Config;
        var entries = ExpandRows(PlainWeightEntries(mergeAdapters: true), vocabulary?.RowSource);

        var ids = new Dictionary<string, JsonNode?> { ["torch_dtype"] = dtype switch { ExportDType.BF16 => "bfloat16", ExportDType.F16 => "float16", _ => "float32" } };
        if (vocabulary?.BeginOfTextId is int bos) ids["bos_token_id"] = bos;
        if (vocabulary?.EndOfTextId is int eos) ids["eos_token_id"] = eos;
        File.WriteAllText(Path.Combine(directory, "config.json"), HuggingFaceConfig.Write(config, ids).ToJsonString(Indented));

        var generation = new JsonObject { ["_from_model_config"] = true, ["do_sample"] = false };
        if (vocabulary?.BeginOfTextId is int b) generation["bos_token_id"] = b;
        if (vocabulary?.EndOfTextId is int e)
        {
            generation["eos_token_id"] = e;
            generation["pad_token_id"] = e;
        }
        File.WriteAllText(Path.Combine(directory, "generation_config.json"), generation.ToJsonString(Indented));

        int done = 0;
        WriteSafetensorsShards(directory, entries, dtype, options.MaxShardBytes,
            name => progress?.Report(new ExportProgress(name, ++done, entries.Count)), cancellationToken);
        if (tokenizer is not null) TokenizerFiles.Write(directory, tokenizer, vocabulary!, options, Config.MaxSequenceLength);
    }

    /// <summary>The entries with the embedding and output rows gathered by <paramref name="rowSource"/> (null: unchanged).</summary>
    internal static IReadOnlyList<SafetensorsEntry> ExpandRows(IReadOnlyList<SafetensorsEntry> entries, int[]? rowSource)
    {
        if (rowSource is null) return entries;
        return [.. entries.Select(e => e.Name is "model.embed_tokens.weight" or "lm_head.weight"
            ? new SafetensorsEntry(e.Name, [rowSource.LongLength, e.Shape[1]], () =>
            {
                using var index = tensor(rowSource.Select(r => (long)r).ToArray(), dtype: ScalarType.Int64);
                var value = e.Produce();
                return value.index_select(0, index.to(value.device));
            })
            : e)];
    }

    private static void WriteSafetensorsShards(string directory, IReadOnlyList<SafetensorsEntry> entries, ExportDType dtype, long maxShardBytes,
        Action<string> written, CancellationToken cancellationToken)
    {
        int size = SafetensorsFile.ElementSize(dtype);
        var shards = new List<List<SafetensorsEntry>> { new() };
        long current = 0, total = 0;
        foreach (var e in entries)
        {
            long bytes = e.ElementCount * size;
            if (current > 0 && current + bytes > maxShardBytes)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(e);
            current += bytes;
            total += bytes;
        }
        if (shards.Count == 1)
        {
            SafetensorsFile.Write(Path.Combine(directory, "model.safetensors"), shards[0], dtype, written: written, cancellationToken: cancellationToken);
            return;
        }
        var weightMap = new JsonObject();
        for (int i = 0; i < shards.Count; i++)
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors");
            SafetensorsFile.Write(Path.Combine(directory, name), shards[i], dtype, written: written, cancellationToken: cancellationToken);
            foreach (var e in shards[i]) weightMap[e.Name] = name;
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"), index.ToJsonString(Indented));
    }
}
