using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>The SwiGLU feed-forward block: <c>down(silu(gate(x)) * up(x))</c>.</summary>
internal sealed class SwiGluMlp : nn.Module<Tensor, Tensor>
{
    // Components are registered by explicit (Hugging Face) names in the constructor; the default
    // reflection-based registration would add them a second time under the C# field names.
    protected override void RegisterComponents() { }

    // Plain Linear layers unless LoRA replaced them (ReplaceProjections).
    private nn.Module<Tensor, Tensor> _gate;
    private nn.Module<Tensor, Tensor> _up;
    private nn.Module<Tensor, Tensor> _down;

    public SwiGluMlp(CausalLanguageModelConfig config) : base(nameof(SwiGluMlp))
    {
        _gate = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: config.MlpBias);
        _up = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: config.MlpBias);
        _down = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: config.MlpBias);
        RegisterProjections();
    }

    private void RegisterProjections()
    {
        register_module("gate_proj", _gate);
        register_module("up_proj", _up);
        register_module("down_proj", _down);
    }

    /// <summary>Replaces each projection (by its Hugging Face name), keeping the registration order.</summary>
    internal void ReplaceProjections(Func<string, nn.Module<Tensor, Tensor>, nn.Module<Tensor, Tensor>> replace)
    {
        foreach (var name in (string[])["gate_proj", "up_proj", "down_proj"]) register_module(name, null!);
        (_gate, _up, _down) = (replace("gate_proj", _gate), replace("up_proj", _up), replace("down_proj", _down));
        RegisterProjections();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return _down.forward(nn.functional.silu(_gate.forward(input)) * _up.forward(input)).MoveToOuterDisposeScope();
    }
}
