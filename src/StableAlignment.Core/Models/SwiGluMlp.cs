using TorchSharp.Modules;
using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>The SwiGLU feed-forward block: <c>down(silu(gate(x)) * up(x))</c>.</summary>
internal sealed class SwiGluMlp : nn.Module<Tensor, Tensor>
{
    // Components are registered by explicit (Hugging Face) names in the constructor; the default
    // reflection-based registration would add them a second time under the C# field names.
    protected override void RegisterComponents() { }

    private readonly Linear _gate;
    private readonly Linear _up;
    private readonly Linear _down;

    public SwiGluMlp(CausalLanguageModelConfig config) : base(nameof(SwiGluMlp))
    {
        _gate = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: config.MlpBias);
        _up = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: config.MlpBias);
        _down = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: config.MlpBias);
        register_module("gate_proj", _gate);
        register_module("up_proj", _up);
        register_module("down_proj", _down);
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return _down.forward(nn.functional.silu(_gate.forward(input)) * _up.forward(input)).MoveToOuterDisposeScope();
    }
}
