using System.Runtime.InteropServices;

namespace StableAlignment.Core.Training;

/// <summary>Element type of the logits (and of the gradient) the kernels read and write.</summary>
public enum CudaLogitsType
{
    /// <summary>IEEE float32.</summary>
    Fp32,

    /// <summary>bfloat16 (accumulated in float32).</summary>
    Bf16,
}

/// <summary>Device addresses and sizes of one batch, as the kernels take them.</summary>
internal readonly record struct KernelInputs(
    nint Logits, CudaLogitsType Type, int Responses, int Tokens, int Vocabulary, int Groups,
    nint Targets, nint Mask, nint GroupIds, nint Ratings, long IgnoreIndex)
{
    public long Rows => (long)Responses * Tokens;
}

/// <summary>Device addresses of everything the forward pass writes (sizes in <see cref="LossWorkspace"/>).</summary>
internal readonly record struct ForwardBuffers(
    nint Lse, nint TokenNll, nint BadRow, nint Nll, nint Length, nint Norm, nint Coeff,
    nint Sft, nint Rank, nint BestLowest, nint Loss);

/// <summary>
/// Launches the three kernels of <c>native/cpo_kernels.cu</c> on an <see cref="IKernelDevice"/>. Knows nothing
/// about TorchSharp, so the GPU checker shares it.
/// </summary>
internal sealed unsafe class PreferenceKernels(IKernelDevice device)
{
    /// <summary>Threads of the single-block group kernel.</summary>
    private const uint GroupBlock = 256;

    public IKernelDevice Device { get; } = device;

    /// <summary>Forward pass and group reduction: fills every buffer of <paramref name="o"/>. <c>BadRow</c> must be zeroed by the caller.</summary>
    public void Forward(in KernelInputs x, in ForwardBuffers o, ContrastivePreferenceOptions options)
    {
        RowForward(x, o.Lse, o.TokenNll, o.BadRow);
        var targets = x.Targets;
        var mask = x.Mask;
        var ignore = x.IgnoreIndex;
        var tokenNll = o.TokenNll;
        var groupIds = x.GroupIds;
        var ratings = x.Ratings;
        var responses = x.Responses;
        var tokens = x.Tokens;
        var groupCount = x.Groups;
        var kernelOptions = new GroupOptions(options);
        var nll = o.Nll;
        var length = o.Length;
        var norm = o.Norm;
        var coeff = o.Coeff;
        var sft = o.Sft;
        var rank = o.Rank;
        var bestLowest = o.BestLowest;
        var loss = o.Loss;
        var groupArgs = stackalloc nint[]
        {
            (nint)(&tokenNll), (nint)(&targets), (nint)(&mask), (nint)(&ignore), (nint)(&groupIds), (nint)(&ratings),
            (nint)(&responses), (nint)(&tokens), (nint)(&groupCount), (nint)(&kernelOptions), (nint)(&nll), (nint)(&length),
            (nint)(&norm), (nint)(&coeff), (nint)(&sft), (nint)(&rank), (nint)(&bestLowest), (nint)(&loss),
        };
        Device.Launch("cpo_group", 1, Math.Min(GroupBlock, Device.BlockSize), (nint)groupArgs);
    }

    /// <summary>
    /// The row kernel alone: <c>lse</c> and the token NLL of each of the <c>N·T</c> rows (0 for masked rows; NaN and
    /// <c>badRow</c> = row + 1 for a target outside the vocabulary). The fused output layer calls it per chunk of rows.
    /// </summary>
    public void RowForward(in KernelInputs x, nint lse, nint tokenNll, nint badRow)
    {
        var logits = x.Logits;
        var targets = x.Targets;
        var mask = x.Mask;
        var ignore = x.IgnoreIndex;
        var rows = x.Rows;
        var vocab = x.Vocabulary;
        var args = stackalloc nint[] { (nint)(&logits), (nint)(&targets), (nint)(&mask), (nint)(&ignore), (nint)(&rows), (nint)(&vocab), (nint)(&lse), (nint)(&tokenNll), (nint)(&badRow) };
        Device.Launch(x.Type == CudaLogitsType.Fp32 ? "cpo_forward_f32" : "cpo_forward_bf16", RowGrid(rows), Device.BlockSize, (nint)args);
    }

    /// <summary>
    /// Writes <c>grad_logits</c>: <c>(lossGrad * coeff_n + nllGrad_n) * norm_n * (softmax - onehot)</c> on unmasked tokens, 0 elsewhere.
    /// <paramref name="lossGrad"/> (a device float) and <paramref name="nllGrad"/> (device floats [N]) may be 0: 1 and none.
    /// </summary>
    public void Backward(in KernelInputs x, nint lse, nint coeff, nint norm, nint lossGrad, nint nllGrad, nint grad)
    {
        var logits = x.Logits;
        var targets = x.Targets;
        var mask = x.Mask;
        var ignore = x.IgnoreIndex;
        var rows = x.Rows;
        var tokens = x.Tokens;
        var vocab = x.Vocabulary;
        var args = stackalloc nint[]
        {
            (nint)(&logits), (nint)(&targets), (nint)(&mask), (nint)(&ignore), (nint)(&rows), (nint)(&tokens), (nint)(&vocab),
            (nint)(&lse), (nint)(&coeff), (nint)(&norm), (nint)(&lossGrad), (nint)(&nllGrad), (nint)(&grad),
        };
        Device.Launch(x.Type == CudaLogitsType.Fp32 ? "cpo_backward_f32" : "cpo_backward_bf16", RowGrid(rows), Device.BlockSize, (nint)args);
    }

    private uint RowGrid(long rows) => (uint)Math.Clamp(rows, 1, Device.MaxGridSize);

    /// <summary>Mirrors <c>struct cpo_options</c> in cpo_kernels.cu.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct GroupOptions(ContrastivePreferenceOptions o)
    {
        public readonly double RatingScale = o.RatingScale;
        public readonly double Margin = o.Margin;
        public readonly double RankingWeight = o.RankingWeight;
        public readonly int Reduction = (int)o.Reduction;
        public readonly int LengthNormalization = (int)o.LengthNormalization;
        public readonly int SftOnly = o.SftOnly ? 1 : 0;
        public readonly int Reserved;
    }
}
