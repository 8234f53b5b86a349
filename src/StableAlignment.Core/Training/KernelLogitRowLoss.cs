using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// <see cref="ILogitRowLoss"/> through the hand-written kernels of <c>native/cpo_kernels.cu</c> (the row forward
/// kernel and the backward kernel with one "token" per response, so that each row gets its own scale), on the
/// device-pointer path: CUDA tensors are used in place, CPU tensors are staged (the tests run the kernels' CPU build
/// this way). float32 and bfloat16 logits; the backward pass may write over the logits.
/// </summary>
internal sealed class KernelLogitRowLoss(PreferenceKernels kernels, LossWorkspaces workspaces) : ILogitRowLoss
{
    public void Forward(Tensor logits, Tensor targets, Tensor lse, Tensor tokenNll)
    {
        var device = kernels.Device;
        using var scope = torch.NewDisposeScope();
        using var staging = new TensorStaging(device);
        var noBadRow = torch.zeros(1, ScalarType.Int32, logits.device); // targets were checked on the host already
        kernels.RowForward(Inputs(staging, logits, targets), staging.Out(lse), staging.Out(tokenNll), staging.In(noBadRow));
        staging.CopyOut();
        device.Synchronize();
    }

    public void Backward(Tensor logits, Tensor targets, Tensor lse, Tensor scale, Tensor gradient)
    {
        var device = kernels.Device;
        using var scope = torch.NewDisposeScope();
        using var staging = new TensorStaging(device);
        var ones = workspaces.Get("kernel-row-ones", ScalarType.Float32, logits.device, logits.shape[0]).fill_(HeldScalars.One);
        // With one token per "response", the kernel's coefficient and normaliser are per row: scale_r * 1.
        kernels.Backward(Inputs(staging, logits, targets), staging.In(lse), staging.In(scale), staging.In(ones), 0, 0, staging.Out(gradient));
        staging.CopyOut();
        device.Synchronize();
    }

    private static KernelInputs Inputs(TensorStaging staging, Tensor logits, Tensor targets)
    {
        if (logits.dtype is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw new ArgumentException($"The kernels read float32 or bfloat16 logits, got {logits.dtype}.", nameof(logits));
        var rows = (int)logits.shape[0];
        return new KernelInputs(staging.In(logits), logits.dtype == ScalarType.BFloat16 ? CudaLogitsType.Bf16 : CudaLogitsType.Fp32,
            rows, 1, (int)logits.shape[1], 1, staging.In(targets), 0, 0, 0, new ContrastivePreferenceOptions().IgnoreIndex);
    }
}
