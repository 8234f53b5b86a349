using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Cuda;

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
    /// <exception cref="Driver.CudaException">CUDA is not available (the message says why) or the module fails to load.</exception>
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
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(ratings);
        ObjectDisposedException.ThrowIf(disposed, this);
        if (logits.dim() != 3) throw new ArgumentException($"logits must be [N, T, V], got {Shape(logits)}.", nameof(logits));
        var (n, t, v) = (logits.shape[0], logits.shape[1], logits.shape[2]);
        if (n == 0 || t == 0 || v == 0 || n * t > int.MaxValue || v > int.MaxValue)
            throw new ArgumentException($"logits {Shape(logits)} must have non-zero dimensions, N·T and V below 2^31.", nameof(logits));
        if (targets.dim() != 2 || targets.shape[0] != n || targets.shape[1] != t)
            throw new ArgumentException($"targets must be [{n}, {t}] to match logits, got {Shape(targets)}.", nameof(targets));
        if (groups.dim() != 1 || groups.shape[0] != n) throw new ArgumentException($"groups must be [{n}], got {Shape(groups)}.", nameof(groups));
        if (ratings.dim() != 1 || ratings.shape[0] != n) throw new ArgumentException($"ratings must be [{n}], got {Shape(ratings)}.", nameof(ratings));
        if (lossMask is not null && (lossMask.dim() != 2 || lossMask.shape[0] != n || lossMask.shape[1] != t))
            throw new ArgumentException($"lossMask must be [{n}, {t}] to match logits, got {Shape(lossMask)}.", nameof(lossMask));
        if (logits.dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float64))
            throw new ArgumentException($"logits must be float32, bfloat16 or float64, got {logits.dtype}.", nameof(logits));
        if (!IsInteger(targets.dtype)) throw new ArgumentException($"targets must hold integer ids, got {targets.dtype}.", nameof(targets));
        if (!IsInteger(groups.dtype)) throw new ArgumentException($"groups must hold integer indices, got {groups.dtype}.", nameof(groups));

        var where = logits.device;
        long[] groupIds;
        double[] ratingValues;
        using (var g = groups.to_type(ScalarType.Int64).cpu().contiguous()) groupIds = g.data<long>().ToArray();
        using (var r = ratings.to_type(ScalarType.Float64).cpu().contiguous()) ratingValues = r.data<double>().ToArray();
        var groupCount = PreferenceInputChecks.GroupCount(groupIds, ratingValues, Options);

        // The kernels read float32 or bfloat16; float64 goes through float32 with autograd converting back.
        var isDouble = logits.dtype == ScalarType.Float64;
        var work = (isDouble ? logits.to_type(ScalarType.Float32) : logits).contiguous();
        var state = new CudaPreferenceLossFunction.State(
            runner, (int)n, (int)t, (int)v, groupCount,
            targets.to_type(ScalarType.Int64).to(where).contiguous(),
            lossMask?.ne(0).to_type(ScalarType.Byte).to(where).contiguous(),
            torch.tensor(groupIds, device: where),
            torch.tensor(ratingValues, device: where));
        var outputs = CudaPreferenceLossFunction.apply(work, state);
        Tensor AsInput(Tensor x) => isDouble ? x.to_type(ScalarType.Float64) : x;
        return new PreferenceLossResult(AsInput(outputs[0]), AsInput(outputs[1]), AsInput(outputs[2]), AsInput(outputs[3]), state.BestHasLowestNll);
    }

    private static bool IsInteger(ScalarType type) =>
        type is ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte;

    private static string Shape(Tensor x) => "[" + string.Join(", ", x.shape) + "]";

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        device.Dispose();
    }
}
