using System.Text.Json;

namespace StableAlignment.Core.Models;

/// <summary>
/// Shape of a LLaMA-style decoder-only transformer (RMSNorm, rotary embeddings, SwiGLU, grouped-query attention).
/// The defaults describe a tiny model that trains in minutes on two CPU cores with the GPT-2 vocabulary.
/// </summary>
public sealed record CausalLanguageModelConfig
{
    /// <summary>Vocabulary size. Default 50257 (GPT-2 BPE, the default tokenizer).</summary>
    public int VocabSize { get; init; } = 50257;

    /// <summary>Model (residual stream) width. Default 128.</summary>
    public int HiddenSize { get; init; } = 128;

    /// <summary>Width of the SwiGLU hidden layer. Default 352 (about 8/3 of the width, rounded to 32).</summary>
    public int IntermediateSize { get; init; } = 352;

    /// <summary>Number of decoder layers. Default 2.</summary>
    public int NumLayers { get; init; } = 2;

    /// <summary>Number of query heads. Default 4.</summary>
    public int NumHeads { get; init; } = 4;

    /// <summary>Number of key/value heads; query heads are shared in groups of <c>NumHeads / NumKeyValueHeads</c>. Default 2.</summary>
    public int NumKeyValueHeads { get; init; } = 2;

    /// <summary>Longest sequence the model is used with (prompt + response). Default 512.</summary>
    public int MaxSequenceLength { get; init; } = 512;

    /// <summary>Base of the rotary frequencies. Default 10000.</summary>
    public double RopeTheta { get; init; } = 10000.0;

    /// <summary>Epsilon of RMSNorm. Default 1e-5.</summary>
    public double RmsNormEpsilon { get; init; } = 1e-5;

    /// <summary>Whether the output projection shares the token embedding matrix. Default true (saves 6.4M parameters at GPT-2 vocabulary).</summary>
    public bool TieWordEmbeddings { get; init; } = true;

    /// <summary>Whether the query/key/value projections carry biases (Qwen2 does, LLaMA and SmolLM do not). Default false.</summary>
    public bool AttentionBias { get; init; }

    /// <summary>Standard deviation of the normal initialisation of linear and embedding weights. Default 0.02.</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary>Width of one attention head.</summary>
    public int HeadDim => HiddenSize / NumHeads;

    /// <summary>Checks every option and throws <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public CausalLanguageModelConfig Validate()
    {
        static void Positive(int value, string name)
        {
            if (value <= 0) throw new ArgumentException($"{name} must be positive, got {value}.", name);
        }

        Positive(VocabSize, nameof(VocabSize));
        Positive(HiddenSize, nameof(HiddenSize));
        Positive(IntermediateSize, nameof(IntermediateSize));
        Positive(NumLayers, nameof(NumLayers));
        Positive(NumHeads, nameof(NumHeads));
        Positive(NumKeyValueHeads, nameof(NumKeyValueHeads));
        Positive(MaxSequenceLength, nameof(MaxSequenceLength));
        if (HiddenSize % NumHeads != 0)
            throw new ArgumentException($"HiddenSize ({HiddenSize}) must be a multiple of NumHeads ({NumHeads}).", nameof(HiddenSize));
        if (HeadDim % 2 != 0)
            throw new ArgumentException($"The head width HiddenSize / NumHeads must be even for rotary embeddings, got {HeadDim}.", nameof(NumHeads));
        if (NumHeads % NumKeyValueHeads != 0)
            throw new ArgumentException($"NumHeads ({NumHeads}) must be a multiple of NumKeyValueHeads ({NumKeyValueHeads}).", nameof(NumKeyValueHeads));
        if (!double.IsFinite(RopeTheta) || RopeTheta <= 1)
            throw new ArgumentException($"RopeTheta must be a finite number above 1, got {RopeTheta}.", nameof(RopeTheta));
        if (!double.IsFinite(RmsNormEpsilon) || RmsNormEpsilon <= 0)
            throw new ArgumentException($"RmsNormEpsilon must be a positive finite number, got {RmsNormEpsilon}.", nameof(RmsNormEpsilon));
        if (!double.IsFinite(InitializerRange) || InitializerRange <= 0)
            throw new ArgumentException($"InitializerRange must be a positive finite number, got {InitializerRange}.", nameof(InitializerRange));
        return this;
    }

    /// <summary>
    /// Reads a Hugging Face <c>config.json</c> of a LLaMA, Qwen2 or SmolLM (LLaMA architecture) checkpoint.
    /// </summary>
    /// <param name="configJson">The JSON text of <c>config.json</c>.</param>
    /// <returns>The validated configuration.</returns>
    /// <exception cref="ArgumentException">A required field is missing, or the architecture is not supported.</exception>
    public static CausalLanguageModelConfig FromHuggingFaceConfig(string configJson)
    {
        ArgumentNullException.ThrowIfNull(configJson);
        using var doc = JsonDocument.Parse(configJson);
        var root = doc.RootElement;
        var modelType = root.TryGetProperty("model_type", out var mt) ? mt.GetString() ?? "" : "";
        if (modelType is not ("llama" or "qwen2" or "mistral" or ""))
            throw new ArgumentException($"config.json: model_type '{modelType}' is not a supported architecture (llama, qwen2, mistral).", nameof(configJson));

        int Int(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number
            ? v.GetInt32()
            : throw new ArgumentException($"config.json: required integer field '{name}' is missing.", nameof(configJson));
        double Double(string name, double fallback) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : fallback;
        bool Bool(string name, bool fallback) => root.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

        var heads = Int("num_attention_heads");
        return new CausalLanguageModelConfig
        {
            VocabSize = Int("vocab_size"),
            HiddenSize = Int("hidden_size"),
            IntermediateSize = Int("intermediate_size"),
            NumLayers = Int("num_hidden_layers"),
            NumHeads = heads,
            NumKeyValueHeads = root.TryGetProperty("num_key_value_heads", out var kv) && kv.ValueKind == JsonValueKind.Number ? kv.GetInt32() : heads,
            MaxSequenceLength = root.TryGetProperty("max_position_embeddings", out var mp) && mp.ValueKind == JsonValueKind.Number ? mp.GetInt32() : 2048,
            RopeTheta = Double("rope_theta", 10000.0),
            RmsNormEpsilon = Double("rms_norm_eps", 1e-6),
            TieWordEmbeddings = Bool("tie_word_embeddings", false),
            AttentionBias = Bool("attention_bias", modelType == "qwen2"),
            InitializerRange = Double("initializer_range", 0.02),
        }.Validate();
    }
}
