
namespace StableAlignment.Core.Training;

/// <summary>
/// The host-array and device-pointer paths of the CUDA loss: validation, staging and the three launches.
/// Free of TorchSharp so that the GPU checker shares it.
/// </summary>
internal sealed class PreferenceLossRunner(IKernelDevice device, ContrastivePreferenceOptions options)
{
    public PreferenceKernels Kernels { get; } = new(device);

    public ContrastivePreferenceOptions Options { get; } = options;

    /// <summary>Copies <paramref name="batch"/> in, runs forward (and backward when <paramref name="computeGradient"/>), copies the results out.</summary>
    public CudaPreferenceLossOutputs Compute(CudaPreferenceHostBatch batch, bool computeGradient)
    {
        batch.Validate();
        var groupCount = PreferenceInputChecks.GroupCount(batch.Groups.Span, batch.Ratings.Span, Options);
        var rows = (long)batch.Responses * batch.Tokens;
        using var owned = new DeviceAllocations(device);
        nint maskPointer = 0;
        if (batch.LossMask is { } lossMask)
        {
            var bytes = new byte[rows];
            var span = lossMask.Span;
            for (var i = 0; i < bytes.Length; i++) bytes[i] = span[i] ? (byte)1 : (byte)0;
            maskPointer = owned.Upload<byte>(bytes);
        }
        var inputs = new KernelInputs(
            owned.Upload(batch.Logits.Span), CudaLogitsType.Fp32, batch.Responses, batch.Tokens, batch.Vocabulary, groupCount,
            owned.Upload(batch.Targets.Span), maskPointer, owned.Upload(batch.Groups.Span), owned.Upload(batch.Ratings.Span), Options.IgnoreIndex);
        var grad = computeGradient ? owned.Allocate(rows * batch.Vocabulary * sizeof(float)) : 0;
        var readout = Run(inputs, grad);
        float[]? gradLogits = null;
        if (grad != 0)
        {
            gradLogits = new float[rows * batch.Vocabulary];
            DeviceCopy.ToHost(device, grad, gradLogits.AsSpan());
        }
        return readout.ToOutputs(gradLogits);
    }

    /// <summary>Runs on caller-owned device memory; only the per-response groups and ratings are read back to validate them.</summary>
    public CudaPreferenceLossOutputs Compute(in CudaPreferenceDeviceBatch batch)
    {
        PreferenceShapeChecks.Sizes(batch.Responses, batch.Tokens, batch.Vocabulary);
        if (!Enum.IsDefined(batch.LogitsType))
            throw new ArgumentException($"Unknown logits type {(int)batch.LogitsType}.", nameof(batch));
        if (batch.Logits == 0 || batch.Targets == 0 || batch.Groups == 0 || batch.Ratings == 0)
            throw new ArgumentException("Logits, Targets, Groups and Ratings must all be device pointers (non-zero).", nameof(batch));
        var groupCount = PreferenceInputChecks.GroupCount(
            DeviceCopy.ToHost<long>(device, batch.Groups, batch.Responses), DeviceCopy.ToHost<double>(device, batch.Ratings, batch.Responses), Options);
        var inputs = new KernelInputs(batch.Logits, batch.LogitsType, batch.Responses, batch.Tokens, batch.Vocabulary, groupCount,
            batch.Targets, batch.LossMask, batch.Groups, batch.Ratings, Options.IgnoreIndex);
        return Run(inputs, batch.GradLogits).ToOutputs(null);
    }

    /// <summary>Forward, group reduction, checks, then (when <paramref name="grad"/> is set) the backward pass with a unit upstream gradient.</summary>
    private LossReadout Run(in KernelInputs inputs, nint grad)
    {
        using var workspace = new LossWorkspace(device, inputs.Responses, inputs.Tokens, inputs.Groups);
        var o = workspace.Buffers;
        Kernels.Forward(inputs, o, Options);
        var readout = workspace.Read();
        readout.ThrowIfInvalid(inputs.Tokens, inputs.Vocabulary);
        if (grad != 0)
        {
            Kernels.Backward(inputs, o.Lse, o.Coeff, o.Norm, 0, 0, grad);
            device.Synchronize();
        }
        return readout;
    }
}
