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

    /// <summary>
    /// Whether the attention output projection carries a bias. Default false. Hugging Face's LLaMA sets it together with
    /// the query/key/value biases (<c>attention_bias</c>); Qwen2 never has it, which is how a model exports as Qwen2.
    /// </summary>
    public bool AttentionOutputBias { get; init; }

    /// <summary>Whether the gate, up and down projections of the MLP carry biases (<c>mlp_bias</c>). Default false.</summary>
    public bool MlpBias { get; init; }

    /// <summary>Rescaling of the rotary frequencies (<c>rope_scaling</c>), or null for none (the default).</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>Standard deviation of the normal initialisation of linear and embedding weights. Default 0.02.</summary>
    public double InitializerRange { get; init; } = 0.02;

    private readonly int? _headDim;

    /// <summary>Width of one attention head: <c>HiddenSize / NumHeads</c> unless set (Hugging Face's <c>head_dim</c>).</summary>
    public int HeadDim
    {
        get => _headDim ?? (NumHeads > 0 ? HiddenSize / NumHeads : 0);
        init => _headDim = value;
    }

    /// <summary>Whether <see cref="HeadDim"/> was set explicitly rather than derived from the width.</summary>
    internal bool HasExplicitHeadDim => _headDim is not null;

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
        if (_headDim is null && HiddenSize % NumHeads != 0)
            throw new ArgumentException($"HiddenSize ({HiddenSize}) must be a multiple of NumHeads ({NumHeads}), or HeadDim must be set.", nameof(HiddenSize));
        Positive(HeadDim, nameof(HeadDim));
        if (HeadDim % 2 != 0)
            throw new ArgumentException($"The head width HeadDim must be even for rotary embeddings, got {HeadDim}.", nameof(HeadDim));
        if (NumHeads % NumKeyValueHeads != 0)
            throw new ArgumentException($"NumHeads ({NumHeads}) must be a multiple of NumKeyValueHeads ({NumKeyValueHeads}).", nameof(NumKeyValueHeads));
        if (!double.IsFinite(RopeTheta) || RopeTheta <= 1)
            throw new ArgumentException($"RopeTheta must be a finite number above 1, got {RopeTheta}.", nameof(RopeTheta));
        if (!double.IsFinite(RmsNormEpsilon) || RmsNormEpsilon <= 0)
            throw new ArgumentException($"RmsNormEpsilon must be a positive finite number, got {RmsNormEpsilon}.", nameof(RmsNormEpsilon));
        if (!double.IsFinite(InitializerRange) || InitializerRange <= 0)
            throw new ArgumentException($"InitializerRange must be a positive finite number, got {InitializerRange}.", nameof(InitializerRange));
        RopeScaling?.Validate();
        return this;
    }

    /// <summary>
    /// Reads a Hugging Face <c>config.json</c> of a LLaMA, Qwen2, Mistral or SmolLM (LLaMA architecture) checkpoint.
    /// Every field that changes the forward pass is either honoured (<c>rope_scaling</c> of type <c>linear</c> or
    /// <c>llama3</c>, <c>head_dim</c>, <c>hidden_act</c> <c>silu</c>, <c>attention_bias</c>, <c>mlp_bias</c>,
    /// <c>tie_word_embeddings</c>, ...) or refused.
    /// </summary>
    /// <param name="configJson">The JSON text of <c>config.json</c>.</param>
    /// <returns>The validated configuration.</returns>
    /// <exception cref="ArgumentException">A required field is missing, or a field has a value this model cannot
    /// compute exactly; the message names the field and the value.</exception>
    public static CausalLanguageModelConfig FromHuggingFaceConfig(string configJson) => HuggingFaceConfig.Read(configJson);
}
