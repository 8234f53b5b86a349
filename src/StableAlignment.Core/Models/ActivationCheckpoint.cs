using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Models;

/// <summary>
/// Activation checkpointing of one decoder layer, as an autograd function: the forward pass runs the layer without
/// recording it and keeps only its input; the backward pass runs the layer again with autograd on and back-propagates
/// through that recomputation. Memory per layer drops from every intermediate of attention and the MLP to the
/// layer's input <c>[B, T, C]</c>, for one more forward pass of the layer.
/// </summary>
/// <remarks>
/// The layer's parameters are passed as inputs of the function, so its output requires a gradient whenever any of
/// them does (a frozen embedding under LoRA must not cut the adapters off, as it does with PyTorch's reentrant
/// checkpoint), and their gradients reach them through autograd like any other input's. The only randomness in a
/// layer is LoRA's dropout while training; on the CPU the default generator's state is saved before the forward
/// pass and restored for the recomputation (and put back afterwards), so the recomputation draws the same masks and
/// the gradients are those of the run without checkpointing. TorchSharp exposes no CUDA generator state, so on
/// other devices a layer with active dropout is not checkpointed (<see cref="Reproducible"/>).
/// </remarks>
internal sealed class ActivationCheckpoint : autograd.SingleTensorFunction<ActivationCheckpoint>
{
    private const string LayerKey = "layer";
    private const string GeneratorKey = "generator";

    /// <summary>The layer, its index and its parameters, in the order they follow the tensors in the arguments.</summary>
    private sealed record Layer(DecoderLayer Module, int Index, Tensor[] Parameters);

    /// <inheritdoc />
    public override string Name => "StableAlignmentActivationCheckpoint";

    /// <summary>
    /// Whether recomputing <paramref name="layer"/> on <paramref name="x"/> repeats its forward pass exactly: on the CPU
    /// always (the generator state is restored), elsewhere only when nothing in it draws random numbers.
    /// </summary>
    public static bool Reproducible(DecoderLayer layer, Tensor x) =>
        x.device.type == DeviceType.CPU || !layer.training || !layer.modules().OfType<LoraLinear>().Any(l => l.Dropout > 0);

    /// <summary>Runs <paramref name="layer"/> on <paramref name="x"/>, to be recomputed in the backward pass.</summary>
    public static Tensor Apply(DecoderLayer layer, int index, Tensor x, Tensor cos, Tensor sin)
    {
        var parameters = layer.parameters().Select(p => (Tensor)p).ToArray();
        var args = new object[4 + parameters.Length];
        (args[0], args[1], args[2], args[3]) = (x, cos, sin, new Layer(layer, index, parameters));
        parameters.CopyTo(args, 4);
        return apply(args);
    }

    /// <inheritdoc />
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(vars);
        Tensor x = (Tensor)vars[0], cos = (Tensor)vars[1], sin = (Tensor)vars[2];
        var layer = (Layer)vars[3];
        ctx.save_for_backward([x, cos, sin]);
        ctx.save_data(LayerKey, layer);
        // Kept as bytes: a tensor made here would belong to the caller's dispose scope, gone before the backward pass.
        using (var state = torch.Generator.Default.get_state()) ctx.save_data(GeneratorKey, state.data<byte>().ToArray());
        return layer.Module.Forward(x, cos, sin, null, layer.Index); // autograd is off inside forward
    }

    /// <inheritdoc />
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var saved = ctx.get_saved_variables();
        Tensor x = saved[0], cos = saved[1], sin = saved[2];
        var layer = (Layer)ctx.get_data(LayerKey);
        var result = new List<Tensor>(new Tensor[4 + layer.Parameters.Length]);
        using (var scope = NewDisposeScope())
        using (torch.enable_grad(true))
        {
            var input = x.detach().requires_grad_(x.requires_grad);
            var current = torch.Generator.Default.get_state();
            torch.Generator.Default.set_state(torch.tensor((byte[])ctx.get_data(GeneratorKey)));
            var output = layer.Module.Forward(input, cos, sin, null, layer.Index);
            torch.Generator.Default.set_state(current);
            var wanted = new List<(int Slot, Tensor Tensor)>();
            if (x.requires_grad) wanted.Add((0, input));
            for (var i = 0; i < layer.Parameters.Length; i++)
                if (layer.Parameters[i].requires_grad) wanted.Add((4 + i, layer.Parameters[i]));
            var grads = autograd.grad([output], wanted.Select(w => w.Tensor).ToList(), [grad_output], allow_unused: true);
            for (var i = 0; i < wanted.Count; i++)
                result[wanted[i].Slot] = grads[i] is { IsInvalid: false } g ? g.MoveToOuterDisposeScope() : null!;
        }
        foreach (var t in saved) t.Dispose();
        return result;
    }
}
