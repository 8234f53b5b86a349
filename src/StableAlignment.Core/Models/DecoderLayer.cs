using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>One pre-norm decoder block: <c>x + attn(norm(x))</c>, then <c>x + mlp(norm(x))</c>.</summary>
internal sealed class DecoderLayer : nn.Module
{
    // Components are registered by explicit (Hugging Face) names in the constructor; the default
    // reflection-based registration would add them a second time under the C# field names.
    protected override void RegisterComponents() { }

    private readonly RmsNorm _inputNorm;
    private readonly GroupedQueryAttention _attention;
    private readonly RmsNorm _postAttentionNorm;
    private readonly SwiGluMlp _mlp;

    public DecoderLayer(CausalLanguageModelConfig config) : base(nameof(DecoderLayer))
    {
        _inputNorm = new RmsNorm(config.HiddenSize, config.RmsNormEpsilon);
        _attention = new GroupedQueryAttention(config);
        _postAttentionNorm = new RmsNorm(config.HiddenSize, config.RmsNormEpsilon);
        _mlp = new SwiGluMlp(config);
        register_module("input_layernorm", _inputNorm);
        register_module("self_attn", _attention);
        register_module("post_attention_layernorm", _postAttentionNorm);
        register_module("mlp", _mlp);
    }

    /// <summary>The attention block, whose projections LoRA wraps.</summary>
    internal GroupedQueryAttention Attention => _attention;

    /// <summary>The MLP block, whose projections LoRA wraps.</summary>
    internal SwiGluMlp Mlp => _mlp;

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, KeyValueCache? cache, int layer)
    {
        using var scope = NewDisposeScope();
        var h = x.add(_attention.Forward(_inputNorm.forward(x), cos, sin, cache, layer), HeldScalars.One);
        return h.add(_mlp.forward(_postAttentionNorm.forward(h)), HeldScalars.One).MoveToOuterDisposeScope();
    }
}
