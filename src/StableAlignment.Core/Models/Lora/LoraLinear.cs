using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>
/// A frozen linear layer plus a trainable low-rank update, named as PEFT names it: the base keeps the projection's own
/// parameter names (<c>weight</c>, <c>bias</c>), the update is <c>lora_A</c> <c>[r, in]</c> and <c>lora_B</c> <c>[out, r]</c>.
/// </summary>
internal sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    // Registered by explicit names; reflection would add the fields a second time.
    protected override void RegisterComponents() { }

    private readonly Linear _a;
    private readonly Linear _b;
    private readonly double _dropout;

    /// <summary>Dropout on the adapter's input while training.</summary>
    internal double Dropout => _dropout;

    /// <summary>Wraps <paramref name="baseLayer"/>, whose parameters it takes over (frozen); A is Kaiming-uniform, B zero.</summary>
    public LoraLinear(Linear baseLayer, LoraOptions options, Generator? generator = null) : base(nameof(LoraLinear))
    {
        var weight = baseLayer.weight!;
        var dtype = weight.dtype;
        var device = weight.device;
        OutFeatures = weight.shape[0];
        InFeatures = weight.shape[1];
        Rank = options.Rank;
        Scaling = options.Scaling;
        _dropout = options.Dropout;
        using (no_grad())
        {
            // Take the base layer's storage over rather than copy it: the caller disposes the base layer, and a copy of
            // every projection (1.4 GB at 0.5B) left freed blocks the process never returned, raising the peak resident set.
            var baseWeight = options.StoreBaseInBFloat16 ? weight.to_type(ScalarType.BFloat16) : weight.detach();
            register_parameter("weight", new Parameter(baseWeight, requires_grad: false));
            if (baseLayer.bias is { } bias)
                register_parameter("bias", new Parameter(bias.detach(), requires_grad: false));
        }
        _a = nn.Linear(InFeatures, Rank, hasBias: false, device: device, dtype: dtype);
        _b = nn.Linear(Rank, OutFeatures, hasBias: false, device: device, dtype: dtype);
        using (no_grad())
        {
            // PEFT's default: A as nn.Linear initialises it (Kaiming-uniform with a = sqrt 5, i.e. U(-1/sqrt(in), 1/sqrt(in))),
            // B zero, so a new adapter changes nothing.
            double bound = 1 / Math.Sqrt(InFeatures);
            if (generator is null) _a.weight!.uniform_(-bound, bound);
            else
            {
                // A seeded generator is a CPU one, which torch refuses for a tensor on a GPU: draw on the CPU and copy,
                // which also gives the same A on every device.
                using var drawn = empty(_a.weight!.shape, dtype: dtype).uniform_(-bound, bound, generator);
                _a.weight!.copy_(drawn);
            }
            _b.weight!.zero_();
        }
        register_module("lora_A", _a);
        register_module("lora_B", _b);
    }

    public long InFeatures { get; }

    public long OutFeatures { get; }

    public long Rank { get; }

    public double Scaling { get; }

    /// <summary>The frozen base weight (possibly bfloat16).</summary>
    public Tensor BaseWeight => get_parameter("weight")!;

    /// <summary>The frozen base bias, or null.</summary>
    public Tensor? BaseBias => get_parameter("bias");

    public Tensor A => _a.weight!;

    public Tensor B => _b.weight!;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var w = BaseWeight;
        var bias = BaseBias;
        var y = nn.functional.linear(input, w.dtype == input.dtype ? w : w.to_type(input.dtype),
            bias is null ? null : bias.dtype == input.dtype ? bias : bias.to_type(input.dtype));
        var h = _dropout > 0 && training ? nn.functional.dropout(input, _dropout, training: true) : input;
        using var scaling = Scaling.ToScalar();
        return y.add(_b.forward(_a.forward(h)).mul(scaling), HeldScalars.One).MoveToOuterDisposeScope();
    }

    /// <summary><c>W + scaling * B A</c> in the adapter's dtype (float32 unless the model was converted), detached.</summary>
    public Tensor MergedWeight()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var scaling = Scaling.ToScalar();
        var delta = matmul(B, A).mul(scaling);
        return BaseWeight.to_type(A.dtype).add(delta, HeldScalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>A plain <see cref="Linear"/> holding <see cref="MergedWeight"/> and the base bias.</summary>
    public Linear ToMergedLinear()
    {
        var linear = nn.Linear(InFeatures, OutFeatures, hasBias: BaseBias is not null, device: A.device, dtype: A.dtype);
        using var noGrad = no_grad();
        using var merged = MergedWeight();
        linear.weight!.copy_(merged);
        if (BaseBias is { } b) linear.bias!.copy_(b);
        return linear;
    }
}
