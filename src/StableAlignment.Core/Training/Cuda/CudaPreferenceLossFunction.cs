using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// The CUDA loss as a TorchSharp autograd function. Inputs: the logits (the only tensor autograd sees) and a
/// <see cref="State"/>. Outputs: loss [], response NLL [N] (both differentiable), SFT terms [G], ranking terms [G].
/// Saves lse, coefficients and normalisers (O(N·T)) for the backward kernel.
/// </summary>
internal sealed class CudaPreferenceLossFunction : autograd.MultiTensorFunction<CudaPreferenceLossFunction>
{
    private const string StateKey = "state";

    /// <summary>Everything but the logits, plus what forward reports to the caller.</summary>
    internal sealed class State(PreferenceLossRunner runner, int responses, int tokens, int vocabulary, int groups,
        Tensor targets, Tensor? mask, Tensor groupIds, Tensor ratings)
    {
        public PreferenceLossRunner Runner { get; } = runner;
        public int Responses { get; } = responses;
        public int Tokens { get; } = tokens;
        public int Vocabulary { get; } = vocabulary;
        public int Groups { get; } = groups;
        public Tensor Targets { get; } = targets;
        public Tensor? Mask { get; } = mask;
        public Tensor GroupIds { get; } = groupIds;
        public Tensor Ratings { get; } = ratings;
        public IReadOnlyList<bool?> BestHasLowestNll { get; set; } = [];

        public KernelInputs Stage(TensorStaging staging, Tensor logits) => new(
            staging.In(logits), logits.dtype == ScalarType.BFloat16 ? CudaLogitsType.Bf16 : CudaLogitsType.Fp32,
            Responses, Tokens, Vocabulary, Groups, staging.In(Targets), Mask is null ? 0 : staging.In(Mask),
            staging.In(GroupIds), staging.In(Ratings), Runner.Options.IgnoreIndex);
    }

    /// <inheritdoc />
    public override string Name => "CudaContrastivePreferenceLoss";

    /// <inheritdoc />
    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(vars);
        var logits = (Tensor)vars[0];
        var s = (State)vars[1];
        var device = s.Runner.Kernels.Device;
        var where = logits.device;
        using var staging = new TensorStaging(device);
        var inputs = s.Stage(staging, logits);
        using var workspace = new LossWorkspace(device, s.Responses, s.Tokens, s.Groups);
        var o = workspace.Buffers;
        s.Runner.Kernels.Forward(inputs, o, s.Runner.Options);
        var readout = workspace.Read();
        readout.ThrowIfInvalid(s.Tokens, s.Vocabulary);
        s.BestHasLowestNll = readout.BestHasLowestNll();

        var lse = empty(s.Responses * (long)s.Tokens, ScalarType.Float32, where);
        var coeff = empty(s.Responses, ScalarType.Float32, where);
        var norm = empty(s.Responses, ScalarType.Float32, where);
        staging.Download(o.Lse, lse);
        staging.Download(o.Coeff, coeff);
        staging.Download(o.Norm, norm);
        var loss = tensor(readout.Loss, ScalarType.Float32, where);
        var nll = tensor(readout.Nll, ScalarType.Float32, where);
        var sft = tensor(readout.Sft, ScalarType.Float32, where);
        var rank = tensor(readout.Rank, ScalarType.Float32, where);
        ctx.save_for_backward([logits, lse, coeff, norm]);
        ctx.save_data(StateKey, s);
        ctx.mark_non_differentiable([sft, rank]);
        return [loss, nll, sft, rank];
    }

    /// <inheritdoc />
    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grad_outputs)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(grad_outputs);
        var saved = ctx.get_saved_variables();
        var (logits, lse, coeff, norm) = (saved[0], saved[1], saved[2], saved[3]);
        var s = (State)ctx.get_data(StateKey);
        var device = s.Runner.Kernels.Device;
        using var lossGrad = grad_outputs[0].to_type(ScalarType.Float32).contiguous();
        using var nllGrad = grad_outputs[1].to_type(ScalarType.Float32).contiguous();
        var grad = empty_like(logits);
        using var staging = new TensorStaging(device);
        var inputs = s.Stage(staging, logits);
        s.Runner.Kernels.Backward(inputs, staging.In(lse), staging.In(coeff), staging.In(norm), staging.In(lossGrad), staging.In(nllGrad), staging.Out(grad));
        staging.CopyOut();
        device.Synchronize();
        return [grad, null!]; // none for the State argument
    }
}
