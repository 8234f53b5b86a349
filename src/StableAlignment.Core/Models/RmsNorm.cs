using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>Root-mean-square layer norm: <c>x / sqrt(mean(x^2) + eps) * weight</c> over the last dimension.</summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    // Components are registered by explicit (Hugging Face) names in the constructor; the default
    // reflection-based registration would add them a second time under the C# field names.
    protected override void RegisterComponents() { }

    private readonly Scalar _epsilon;

    public RmsNorm(long size, double epsilon) : base(nameof(RmsNorm))
    {
        _epsilon = epsilon.ToScalar();
        // Hugging Face names the scale "weight"; explicit names keep checkpoints interchangeable.
        register_parameter("weight", new Parameter(ones(size)));
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // Looked up, not cached in a field: Module.to(dtype) replaces registered parameters.
        var weight = get_parameter("weight")!;
        // Statistics in float32 at least, as reduced precision loses the small squares.
        var x = input.dtype == ScalarType.Float64 ? input : input.to_type(ScalarType.Float32);
        var normed = x * rsqrt(x.pow(HeldScalars.Two).mean([-1], keepdim: true).add(_epsilon, HeldScalars.One));
        return (normed.to_type(input.dtype) * weight).MoveToOuterDisposeScope();
    }
}
