using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Benchmarks.Training;

/// <summary>
/// Stands in for a model's output layer in the loss benchmarks: hands out the same resident logits buffer, refilled
/// from pristine values with <c>copy_</c> (about 10 ms at 262 MB on the 2-core VM), as the non-leaf output of an
/// autograd node, which is what the loss sees in training and what lets it write its gradient over the logits.
/// </summary>
internal sealed class ModelOutputLogits : autograd.SingleTensorFunction<ModelOutputLogits>
{
    /// <summary>The pristine logits and the buffer they are copied into.</summary>
    internal sealed record Buffers(Tensor Pristine, Tensor Output);

    public override string Name => "BenchmarkModelOutputLogits";

    /// <summary>Refills <paramref name="buffers"/>' output; <paramref name="anchor"/> (a scalar leaf that requires grad) makes it differentiable.</summary>
    public static Tensor Produce(Tensor anchor, Buffers buffers) => apply(anchor, buffers);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var buffers = (Buffers)vars[1];
        return buffers.Output.copy_(buffers.Pristine);
    }

    // The gradient stops here: nothing upstream is being benchmarked.
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output) => [null!, null!];
}
