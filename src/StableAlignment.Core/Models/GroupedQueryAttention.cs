using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>
/// Causal self-attention where query heads share key/value heads in consecutive groups
/// (query head <c>h</c> reads key/value head <c>h / (H / Hkv)</c>, as in Hugging Face's <c>repeat_kv</c>).
/// </summary>
internal sealed class GroupedQueryAttention : nn.Module
{
    // Components are registered by explicit (Hugging Face) names in the constructor; the default
    // reflection-based registration would add them a second time under the C# field names.
    protected override void RegisterComponents() { }

    // Plain Linear layers unless LoRA replaced them (ReplaceProjections).
    private nn.Module<Tensor, Tensor> _q;
    private nn.Module<Tensor, Tensor> _k;
    private nn.Module<Tensor, Tensor> _v;
    private nn.Module<Tensor, Tensor> _o;
    private readonly CausalLanguageModelConfig _config;

    public GroupedQueryAttention(CausalLanguageModelConfig config) : base(nameof(GroupedQueryAttention))
    {
        _config = config;
        var d = config.HeadDim;
        _q = nn.Linear(config.HiddenSize, config.NumHeads * d, hasBias: config.AttentionBias);
        _k = nn.Linear(config.HiddenSize, config.NumKeyValueHeads * d, hasBias: config.AttentionBias);
        _v = nn.Linear(config.HiddenSize, config.NumKeyValueHeads * d, hasBias: config.AttentionBias);
        _o = nn.Linear(config.NumHeads * d, config.HiddenSize, hasBias: config.AttentionOutputBias);
        RegisterProjections();
    }

    private void RegisterProjections()
    {
        register_module("q_proj", _q);
        register_module("k_proj", _k);
        register_module("v_proj", _v);
        register_module("o_proj", _o);
    }

    /// <summary>
    /// Replaces each projection (by its Hugging Face name) with what <paramref name="replace"/> returns for it, keeping
    /// the registration order so parameter order and state-dict names stay as they were.
    /// </summary>
    internal void ReplaceProjections(Func<string, nn.Module<Tensor, Tensor>, nn.Module<Tensor, Tensor>> replace)
    {
        foreach (var name in (string[])["q_proj", "k_proj", "v_proj", "o_proj"]) register_module(name, null!);
        (_q, _k, _v, _o) = (replace("q_proj", _q), replace("k_proj", _k), replace("v_proj", _v), replace("o_proj", _o));
        RegisterProjections();
    }

    /// <param name="x">Hidden states <c>[B, T, C]</c>.</param>
    /// <param name="cos">Rotary cosines <c>[T, d]</c> for these positions.</param>
    /// <param name="sin">Rotary sines <c>[T, d]</c>.</param>
    /// <param name="cache">Key/value cache to read and extend, or null.</param>
    /// <param name="layer">This layer's index in the cache.</param>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, KeyValueCache? cache, int layer)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], d = _config.HeadDim;
        var q = _q.forward(x).view(b, t, _config.NumHeads, d).transpose(1, 2);
        var k = _k.forward(x).view(b, t, _config.NumKeyValueHeads, d).transpose(1, 2);
        var v = _v.forward(x).view(b, t, _config.NumKeyValueHeads, d).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);

        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        long total = k.shape[2];
        var past = total - t;

        var groups = _config.NumHeads / _config.NumKeyValueHeads;
        if (groups > 1)
        {
            k = k.repeat_interleave(groups, 1);
            v = v.repeat_interleave(groups, 1);
        }

        Tensor attended;
        if (past == 0)
        {
            attended = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: t > 1);
        }
        else if (t == 1)
        {
            attended = nn.functional.scaled_dot_product_attention(q, k, v);
        }
        else
        {
            // New query i sits at absolute position past + i and may see keys 0 .. past + i.
            var mask = ones(t, total, dtype: ScalarType.Bool, device: x.device).tril(past);
            attended = nn.functional.scaled_dot_product_attention(q, k, v, mask);
        }

        var merged = attended.transpose(1, 2).reshape(b, t, _config.NumHeads * d);
        return _o.forward(merged).MoveToOuterDisposeScope();
    }
}
