using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Training;

/// <summary>
/// The contrastive preference loss computed by hand-written CUDA kernels (<c>native/cpo_kernels.cu</c>): the same
/// options and outputs as <see cref="ContrastivePreferenceLoss"/>, in three launches whose extra device memory
/// is O(N·T). Works on TorchSharp tensors (CPU tensors are copied to the GPU and back; CUDA tensors are used in
/// place) as an autograd function, on host arrays, and on raw device pointers.
/// </summary>
/// <remarks>
/// Check <see cref="IsAvailable"/> first: without a CUDA driver or device the constructor throws, and
/// <see cref="ContrastivePreferenceLoss"/> remains the path to use. Gradients flow to the logits through
/// <see cref="PreferenceLossResult.Loss"/> and <see cref="PreferenceLossResult.ResponseNll"/>; the per-group terms are
/// reported for logging only (not differentiable).
/// </remarks>
public sealed class CudaContrastivePreferenceLoss : IPreferenceLoss, IDisposable
{
    private readonly IKernelDevice device;
    private readonly PreferenceLossRunner runner;
    private bool disposed;

    /// <summary>Opens the primary context of GPU 0 and loads the kernels.</summary>
    /// <param name="options">Loss options; defaults when <see langword="null"/>.</param>
    /// <exception cref="Interop.Cuda.CudaException">CUDA is not available (the message says why) or the module fails to load.</exception>
    public CudaContrastivePreferenceLoss(ContrastivePreferenceOptions? options = null)
        : this(options, CudaKernelDevice.Open())
    {
    }

    internal CudaContrastivePreferenceLoss(ContrastivePreferenceOptions? options, IKernelDevice device)
    {
        this.device = device;
        runner = new PreferenceLossRunner(device, (options ?? new ContrastivePreferenceOptions()).Validate());
    }

    /// <summary>Whether the CUDA driver, a GPU and the embedded PTX are present. Never throws.</summary>
    /// <param name="reason">Why not, when it returns <see langword="false"/>; empty otherwise.</param>
    public static bool IsAvailable(out string reason) => CudaKernelDevice.IsAvailable(out reason);

    /// <inheritdoc />
    public ContrastivePreferenceOptions Options => runner.Options;

    /// <summary>What runs the kernels, e.g. <c>CUDA device 0 (NVIDIA H100 80GB HBM3)</c>.</summary>
    public string DeviceDescription => device.Description;

    /// <summary>Computes the loss of a host batch, and its gradient with respect to the logits when <paramref name="computeGradient"/>.</summary>
    public CudaPreferenceLossOutputs Compute(CudaPreferenceHostBatch batch, bool computeGradient = true)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ObjectDisposedException.ThrowIf(disposed, this);
        return runner.Compute(batch, computeGradient);
    }

    /// <summary>Computes the loss of a batch in device memory; writes the gradient when <see cref="CudaPreferenceDeviceBatch.GradLogits"/> is set.</summary>
    public CudaPreferenceLossOutputs Compute(in CudaPreferenceDeviceBatch batch)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return runner.Compute(batch);
    }

    /// <inheritdoc />
    public PreferenceLossResult Compute(Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor? lossMask = null)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        // The reference path's checks, so both paths reject the same inputs with the same messages.
        var checkedInputs = PreferenceInputs.Create(logits, targets, groups, ratings, lossMask, Options);
        var where = logits.device;

        // The kernels read float32 or bfloat16; float64 goes through float32 with autograd converting back.
        var isDouble = logits.dtype == ScalarType.Float64;
        var work = (isDouble ? logits.to_type(ScalarType.Float32) : logits).contiguous();
        var state = new CudaPreferenceLossFunction.State(
            runner, checkedInputs.Responses, checkedInputs.Tokens, checkedInputs.Vocabulary, checkedInputs.GroupCount,
            targets.to_type(ScalarType.Int64).to(where).contiguous(),
            lossMask?.ne(HeldScalars.Zero).to_type(ScalarType.Byte).to(where).contiguous(),
            torch.tensor(checkedInputs.GroupOf, device: where),
            torch.tensor(checkedInputs.Ratings, device: where));
        var outputs = CudaPreferenceLossFunction.apply(work, state);
        Tensor AsInput(Tensor x) => isDouble ? x.to_type(ScalarType.Float64) : x;
        return new PreferenceLossResult(AsInput(outputs[0]), AsInput(outputs[1]), AsInput(outputs[2]), AsInput(outputs[3]), state.BestHasLowestNll);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        device.Dispose();
    }
}
