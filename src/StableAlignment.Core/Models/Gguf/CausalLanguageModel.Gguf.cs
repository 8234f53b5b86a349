using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

// Export to GGUF v3 for llama.cpp and Ollama, laid out as llama.cpp's convert_hf_to_gguf.py lays out a LLaMA checkpoint.
public sealed partial class CausalLanguageModel
{
    /// <summary>
    /// Writes a GGUF v3 file of the llama architecture: llama.cpp's tensor names (<c>token_embd</c>,
    /// <c>blk.N.attn_q</c>, ..., <c>output_norm</c>, <c>output</c> unless tied), the query/key rows permuted from Hugging
    /// Face's half-split rotary layout into the interleaved one llama.cpp's rope expects (as its converter does),
    /// <c>rope_freqs.weight</c> for Llama 3 rope scaling, the <c>gpt2</c> tokenizer (tokens, types, merges,
    /// pre-tokeniser, special ids) and the chat template. A LoRA model is written with its adapters merged.
    /// </summary>
    /// <param name="path">The file to write.</param>
    /// <param name="type">F32, F16 or Q8_0 for the matrices (1-D tensors stay F32; Q8_0 rows that are not a multiple of 32 fall back to F16, as in llama.cpp's converter).</param>
    /// <param name="tokenizer">The model's tokenizer: GPT-2, a compact vocabulary over it, or a byte-level BPE <c>tokenizer.json</c> (named in <see cref="ModelExportOptions.TokenizerFile"/>).</param>
    /// <param name="options">Export settings; null for the defaults.</param>
    /// <param name="progress">Told after each tensor is written.</param>
    /// <param name="cancellationToken">Checked before each tensor; a cancelled export leaves no partial file.</param>
    /// <exception cref="ArgumentException"><paramref name="type"/> is BF16, or the options are invalid.</exception>
    /// <exception cref="NotSupportedException">The tokenizer or the architecture has no GGUF llama equivalent.</exception>
    public void SaveGguf(string path, ExportDType type, Tokenizer tokenizer, ModelExportOptions? options = null,
        IProgress<ExportProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var matrixType = type switch
        {
            ExportDType.F32 => GgmlType.F32,
            ExportDType.F16 => GgmlType.F16,
            ExportDType.Q8_0 => GgmlType.Q8_0,
            _ => throw new ArgumentException($"GGUF exports take f32, f16 or q8_0, not {ExportNames.Name(type)}.", nameof(type)),
        };
        options = (options ?? new ModelExportOptions()).Validate();
        var c = Config;
        if ((c.AttentionBias || c.AttentionOutputBias) && c.NumHeads * c.HeadDim != c.HiddenSize)
            throw new NotSupportedException($"llama.cpp's llama architecture sizes attention biases by the model width; HeadDim {c.HeadDim} x {c.NumHeads} heads != HiddenSize {c.HiddenSize}.");

        var vocabulary = ExportVocabulary.For(tokenizer, options.TokenizerFile, options.Vocabulary ?? VocabularyLayout.Compact, c.VocabSize);
        var gguf = new GgufWriter();
        gguf.Add("general.architecture", "llama");
        gguf.Add("general.name", options.ModelName);
        gguf.Add("general.file_type", type switch { ExportDType.F16 => 1u, ExportDType.Q8_0 => 7u, _ => 0u });
        gguf.Add("general.quantization_version", 2u);
        gguf.Add("llama.context_length", (uint)c.MaxSequenceLength);
        gguf.Add("llama.embedding_length", (uint)c.HiddenSize);
        gguf.Add("llama.block_count", (uint)c.NumLayers);
        gguf.Add("llama.feed_forward_length", (uint)c.IntermediateSize);
        gguf.Add("llama.attention.head_count", (uint)c.NumHeads);
        gguf.Add("llama.attention.head_count_kv", (uint)c.NumKeyValueHeads);
        gguf.Add("llama.rope.freq_base", (float)c.RopeTheta);
        gguf.Add("llama.rope.dimension_count", (uint)c.HeadDim);
        gguf.Add("llama.attention.layer_norm_rms_epsilon", (float)c.RmsNormEpsilon);
        gguf.Add("llama.vocab_size", (uint)vocabulary.Tokens.Count);
        if (c.HasExplicitHeadDim)
        {
            gguf.Add("llama.attention.key_length", (uint)c.HeadDim);
            gguf.Add("llama.attention.value_length", (uint)c.HeadDim);
        }
        if (c.RopeScaling is { Kind: RopeScalingKind.Linear } linear)
        {
            gguf.Add("llama.rope.scaling.type", "linear");
            gguf.Add("llama.rope.scaling.factor", (float)linear.Factor);
        }

        gguf.Add("tokenizer.ggml.model", "gpt2");
        gguf.Add("tokenizer.ggml.pre", vocabulary.PreTokenizer);
        gguf.Add("tokenizer.ggml.tokens", vocabulary.Tokens);
        gguf.Add("tokenizer.ggml.token_type", [.. vocabulary.Types.Select(t => (int)t)]);
        gguf.Add("tokenizer.ggml.merges", vocabulary.Merges);
        if (vocabulary.BeginOfTextId is int bos) gguf.Add("tokenizer.ggml.bos_token_id", (uint)bos);
        if (vocabulary.EndOfTextId is int eos)
        {
            gguf.Add("tokenizer.ggml.eos_token_id", (uint)eos);
            gguf.Add("tokenizer.ggml.padding_token_id", (uint)eos);
        }
        if (vocabulary.UnknownId is int unk) gguf.Add("tokenizer.ggml.unknown_token_id", (uint)unk);
        gguf.Add("tokenizer.ggml.add_bos_token", false);
        gguf.Add("tokenizer.ggml.add_eos_token", false);
        if (options.ChatTemplate is { } template) gguf.Add("tokenizer.chat_template", template);

        if (c.RopeScaling is { Kind: RopeScalingKind.Llama3 } llama3)
        {
            // llama.cpp divides each rotary frequency by its factor: the reciprocal of transformers' scaling ratio.
            var factors = RotaryEmbedding.InverseFrequencies(c.HeadDim, c.RopeTheta, null)
                .Select(f => (float)(1.0 / llama3.FrequencyRatio(f))).ToArray();
            gguf.AddTensor("rope_freqs.weight", [factors.Length], GgmlType.F32, () => factors);
        }
        foreach (var entry in ExpandRows(PlainWeightEntries(mergeAdapters: true), vocabulary.RowSource))
        {
            var name = GgufTensorName(entry.Name);
            int heads = entry.Name.Contains("self_attn.q_proj", StringComparison.Ordinal) ? c.NumHeads
                : entry.Name.Contains("self_attn.k_proj", StringComparison.Ordinal) ? c.NumKeyValueHeads : 0;
            var tensorType = entry.Shape.Length == 1 ? GgmlType.F32
                : matrixType == GgmlType.Q8_0 && entry.Shape[^1] % GgufWriter.Q8BlockSize != 0 ? GgmlType.F16 : matrixType;
            var e = entry;
            gguf.AddTensor(name, e.Shape, tensorType, () =>
            {
                using var scope = NewDisposeScope();
                var value = e.Produce().detach().to_type(ScalarType.Float32);
                if (heads > 0) value = PermuteForInterleavedRope(value, heads);
                return value.contiguous().cpu().data<float>().ToArray();
            });
        }
        int done = 0;
        gguf.Write(path, name => progress?.Report(new ExportProgress(name, ++done, gguf.TensorCount)), cancellationToken);
    }

    /// <summary>
    /// llama.cpp's converter permutation (<c>LlamaModel.permute</c>): rows of each head, split in halves for Hugging Face's
    /// rotate-half rope, are interleaved so that pair <c>(2i, 2i+1)</c> holds channels <c>i</c> and <c>i + d/2</c>.
    /// </summary>
    internal static Tensor PermuteForInterleavedRope(Tensor weight, int heads)
    {
        var shape = weight.shape;
        long rows = shape[0];
        var split = shape.Length == 1 ? new[] { heads, 2L, rows / heads / 2 } : [heads, 2L, rows / heads / 2, shape[1]];
        return weight.reshape(split).transpose(1, 2).reshape(shape);
    }

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")]
    private static partial Regex LayerTensor();

    private static string GgufTensorName(string huggingFaceName)
    {
        switch (huggingFaceName)
        {
            case "model.embed_tokens.weight": return "token_embd.weight";
            case "model.norm.weight": return "output_norm.weight";
            case "lm_head.weight": return "output.weight";
        }
        var m = LayerTensor().Match(huggingFaceName);
        if (!m.Success) throw new InvalidOperationException($"No GGUF name for tensor '{huggingFaceName}'.");
        var rest = m.Groups[2].Value;
        var suffix = rest[(rest.LastIndexOf('.') + 1)..];
        var module = rest[..rest.LastIndexOf('.')] switch
        {
            "input_layernorm" => "attn_norm",
            "post_attention_layernorm" => "ffn_norm",
            "self_attn.q_proj" => "attn_q",
            "self_attn.k_proj" => "attn_k",
            "self_attn.v_proj" => "attn_v",
            "self_attn.o_proj" => "attn_output",
            "mlp.gate_proj" => "ffn_gate",
            "mlp.up_proj" => "ffn_up",
            "mlp.down_proj" => "ffn_down",
            var other => throw new InvalidOperationException($"No GGUF name for tensor '{huggingFaceName}' ({other})."),
        };
        return $"blk.{m.Groups[1].Value}.{module}.{suffix}";
    }
}
