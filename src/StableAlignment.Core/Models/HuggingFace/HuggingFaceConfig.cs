using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace StableAlignment.Core.Models;

/// <summary>
/// Reads and writes Hugging Face <c>config.json</c> for the LLaMA family. Reading never guesses: a field that would
/// change the forward pass is either mapped onto <see cref="CausalLanguageModelConfig"/> exactly or refused with an
/// error naming the field and its value.
/// </summary>
internal static class HuggingFaceConfig
{
    private const string Llama = "llama", Qwen2 = "qwen2", Mistral = "mistral";

    private static readonly Dictionary<string, string> CausalLmArchitectures = new(StringComparer.Ordinal)
    {
        ["LlamaForCausalLM"] = Llama, ["Qwen2ForCausalLM"] = Qwen2, ["MistralForCausalLM"] = Mistral,
    };

    public static CausalLanguageModelConfig Read(string configJson)
    {
        ArgumentNullException.ThrowIfNull(configJson);
        using var doc = JsonDocument.Parse(configJson);
        var root = doc.RootElement;
        var modelType = root.TryGetProperty("model_type", out var mt) ? mt.GetString() ?? "" : "";
        if (modelType is not (Llama or Qwen2 or Mistral or ""))
            throw Refuse("model_type", $"'{modelType}'", "is not a supported architecture (llama, qwen2, mistral)");
        if (modelType.Length == 0) modelType = Llama;
        if (root.TryGetProperty("architectures", out var architectures) && architectures.ValueKind == JsonValueKind.Array
            && architectures.GetArrayLength() > 0 && !CausalLmArchitectures.ContainsKey(architectures[0].GetString() ?? ""))
            throw Refuse("architectures", $"'{architectures[0].GetString()}'", "is not a causal LM head this library computes (LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM)");

        int Int(string name) => TryNumber(root, name) is { } v
            ? v.GetInt32()
            : throw new ArgumentException($"config.json: required integer field '{name}' is missing.", nameof(configJson));
        bool Bool(string name, bool fallback) =>
            root.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

        // transformers 5 moves rope_theta and the scaling into rope_parameters; 4.x uses rope_theta and rope_scaling.
        JsonElement? ropeParameters = root.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind == JsonValueKind.Object ? rp : null;
        JsonElement? ropeScaling = root.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object ? rs : ropeParameters;
        double ropeTheta = TryNumber(root, "rope_theta")?.GetDouble()
                           ?? (ropeParameters is { } p && TryNumber(p, "rope_theta") is { } t ? t.GetDouble() : 10000.0);

        var act = root.TryGetProperty("hidden_act", out var ha) ? ha.GetString() : "silu";
        if (act is not ("silu" or "swish"))
            throw Refuse("hidden_act", $"'{act}'", "is not supported; the MLP computes SwiGLU with silu");
        RequireNumber(root, "partial_rotary_factor", 1.0, "rotary embeddings cover the whole head");
        RequireNumber(root, "attention_dropout", 0.0, "attention has no dropout");
        if (root.TryGetProperty("quantization_config", out var q) && q.ValueKind != JsonValueKind.Null)
            throw Refuse("quantization_config", Excerpt(q), "describes quantised weights, which cannot be loaded; use a float16, bfloat16 or float32 checkpoint");
        if (root.TryGetProperty("layer_types", out var layerTypes) && layerTypes.ValueKind == JsonValueKind.Array)
            foreach (var layer in layerTypes.EnumerateArray())
                if (layer.GetString() != "full_attention")
                    throw Refuse("layer_types", $"'{layer.GetString()}'", "is not supported; every layer must be full_attention");

        int maxPositions = TryNumber(root, "max_position_embeddings")?.GetInt32() ?? 2048;
        bool slidingApplies = modelType == Mistral || Bool("use_sliding_window", false);
        if (slidingApplies && TryNumber(root, "sliding_window") is { } window && window.GetInt64() < maxPositions)
            throw Refuse(modelType == Mistral ? "sliding_window" : "use_sliding_window",
                modelType == Mistral ? window.GetInt64().ToString(CultureInfo.InvariantCulture) : "true",
                $"limits attention to a window of {window.GetInt64()} tokens below max_position_embeddings ({maxPositions}); sliding-window attention is not implemented");

        bool attentionBias = Bool("attention_bias", false), mlpBias = Bool("mlp_bias", false);
        if (modelType == Mistral && attentionBias) throw Refuse("attention_bias", "true", "is not part of the Mistral architecture");
        if (modelType != Llama && mlpBias) throw Refuse("mlp_bias", "true", $"is not part of the {modelType} architecture");

        int heads = Int("num_attention_heads");
        int hidden = Int("hidden_size");
        int? headDim = TryNumber(root, "head_dim")?.GetInt32();
        return new CausalLanguageModelConfig
        {
            VocabSize = Int("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = Int("intermediate_size"),
            NumLayers = Int("num_hidden_layers"),
            NumHeads = heads,
            NumKeyValueHeads = TryNumber(root, "num_key_value_heads")?.GetInt32() ?? heads,
            MaxSequenceLength = maxPositions,
            RopeTheta = ropeTheta,
            RmsNormEpsilon = TryNumber(root, "rms_norm_eps")?.GetDouble() ?? 1e-6,
            TieWordEmbeddings = Bool("tie_word_embeddings", false),
            // Qwen2 always has q/k/v biases and never an output bias; LLaMA's attention_bias covers all four projections.
            AttentionBias = modelType == Qwen2 || attentionBias,
            AttentionOutputBias = modelType != Qwen2 && attentionBias,
            MlpBias = mlpBias,
            RopeScaling = ropeScaling is { } scaling ? ReadRopeScaling(scaling) : null,
            InitializerRange = TryNumber(root, "initializer_range")?.GetDouble() ?? 0.02,
        }.WithHeadDim(headDim, hidden, heads).Validate();
    }

    private static CausalLanguageModelConfig WithHeadDim(this CausalLanguageModelConfig config, int? headDim, int hidden, int heads) =>
        // Set only when it differs from the derived width, so equal shapes compare equal.
        headDim is int d && (heads <= 0 || hidden % heads != 0 || d != hidden / heads) ? config with { HeadDim = d } : config;

    private static RopeScaling? ReadRopeScaling(JsonElement scaling)
    {
        var kind = scaling.TryGetProperty("rope_type", out var rt) ? rt.GetString() : scaling.TryGetProperty("type", out var ty) ? ty.GetString() : null;
        double Required(string name) => TryNumber(scaling, name)?.GetDouble()
            ?? throw Refuse($"rope_scaling.{name}", "(missing)", $"is required by rope_type '{kind}'");
        switch (kind)
        {
            case null or "default":
                return null;
            case "linear":
                return new RopeScaling { Kind = RopeScalingKind.Linear, Factor = Required("factor") }.ValidateAs("rope_scaling");
            case "llama3":
                return new RopeScaling
                {
                    Kind = RopeScalingKind.Llama3,
                    Factor = Required("factor"),
                    LowFrequencyFactor = Required("low_freq_factor"),
                    HighFrequencyFactor = Required("high_freq_factor"),
                    OriginalMaxPositionEmbeddings = (int)Required("original_max_position_embeddings"),
                }.ValidateAs("rope_scaling");
            default:
                throw Refuse("rope_scaling.rope_type", $"'{kind}'", "is not supported (supported: linear, llama3); its frequencies or attention scale would be computed wrongly");
        }
    }

    private static RopeScaling ValidateAs(this RopeScaling scaling, string field)
    {
        try
        {
            return scaling.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"config.json: {field} is invalid: {ex.Message}", ex);
        }
    }

    private static void RequireNumber(JsonElement root, string name, double expected, string why)
    {
        if (TryNumber(root, name) is { } v && v.GetDouble() != expected)
            throw Refuse(name, v.GetRawText(), $"is not supported: {why}, so only {expected.ToString(CultureInfo.InvariantCulture)} is computed exactly");
    }

    private static JsonElement? TryNumber(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v : null;

    private static string Excerpt(JsonElement value)
    {
        var text = value.GetRawText();
        return text.Length <= 60 ? text : text[..60] + "...";
    }

    private static ArgumentException Refuse(string field, string value, string reason) =>
        new($"config.json: field '{field}' = {value} {reason}.");

    /// <summary>The model type a configuration exports as: Qwen2 for q/k/v biases without an output bias, LLaMA otherwise.</summary>
    public static string ModelType(CausalLanguageModelConfig config)
    {
        if (config.AttentionBias && !config.AttentionOutputBias)
        {
            if (config.MlpBias)
                throw new NotSupportedException("A model with query/key/value biases but no output bias is Qwen2, which has no MLP biases; this MlpBias = true configuration has no Hugging Face equivalent.");
            return Qwen2;
        }
        if (config.AttentionOutputBias && !config.AttentionBias)
            throw new NotSupportedException("AttentionOutputBias without AttentionBias has no Hugging Face equivalent (LLaMA's attention_bias covers all four projections).");
        return Llama;
    }

    /// <summary>
    /// <c>config.json</c> for <paramref name="config"/>: every field <see cref="Read"/> needs, with <c>architectures</c>
    /// and the given extra fields (token ids, <c>torch_dtype</c>).
    /// </summary>
    public static JsonObject Write(CausalLanguageModelConfig config, IReadOnlyDictionary<string, JsonNode?>? extra = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var modelType = ModelType(config);
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(modelType == Qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"),
            ["model_type"] = modelType,
            ["vocab_size"] = config.VocabSize,
            ["hidden_size"] = config.HiddenSize,
            ["intermediate_size"] = config.IntermediateSize,
            ["num_hidden_layers"] = config.NumLayers,
            ["num_attention_heads"] = config.NumHeads,
            ["num_key_value_heads"] = config.NumKeyValueHeads,
            ["head_dim"] = config.HeadDim,
            ["max_position_embeddings"] = config.MaxSequenceLength,
            ["rope_theta"] = config.RopeTheta,
            ["rope_scaling"] = config.RopeScaling is { } s ? WriteRopeScaling(s) : null,
            ["rms_norm_eps"] = config.RmsNormEpsilon,
            ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = config.TieWordEmbeddings,
            ["initializer_range"] = config.InitializerRange,
            ["attention_dropout"] = 0.0,
            ["use_cache"] = true,
        };
        if (modelType == Llama)
        {
            json["attention_bias"] = config.AttentionBias;
            json["mlp_bias"] = config.MlpBias;
        }
        else
        {
            json["use_sliding_window"] = false;
            json["max_window_layers"] = config.NumLayers;
        }
        foreach (var (key, value) in extra ?? new Dictionary<string, JsonNode?>())
            json[key] = value?.DeepClone();
        return json;
    }

    private static JsonObject WriteRopeScaling(RopeScaling s) => s.Kind == RopeScalingKind.Linear
        ? new JsonObject { ["rope_type"] = "linear", ["type"] = "linear", ["factor"] = s.Factor }
        : new JsonObject
        {
            ["rope_type"] = "llama3", ["factor"] = s.Factor, ["low_freq_factor"] = s.LowFrequencyFactor,
            ["high_freq_factor"] = s.HighFrequencyFactor, ["original_max_position_embeddings"] = s.OriginalMaxPositionEmbeddings,
        };
}
