using StableAlignment.Core.Training;
using StableAlignment.Core.Tests.Training.Cuda;

namespace StableAlignment.GpuCheck;

/// <summary>
/// Runs the three kernels on any <see cref="IKernelDevice"/> with every output poisoned beforehand (0xFF bytes: NaN)
/// and compares them with the float64 oracle. The GPU checker runs it on the GPU; the tests run it on the CPU build.
/// </summary>
internal static class KernelCheck
{
    public const double Fp32Rtol = 5e-4, Fp32Atol = 1e-5, Bf16Tol = 5e-2, Bf16GradAtol = 1e-3;

    internal sealed record Case(string Name, int Seed, int N, int T, int V, CudaLogitsType Type, bool ExplicitMask, ContrastivePreferenceOptions Options);

    /// <summary>Worst error of each output as a multiple of its tolerance (at most 1 passes; NaN counts as infinite).</summary>
    internal sealed record Outcome(Case Case, double Loss, double Nll, double Terms, double Grad, bool RankingAgrees)
    {
        public bool Passed => Loss <= 1 && Nll <= 1 && Terms <= 1 && Grad <= 1 && RankingAgrees;
    }

    /// <summary>The checker's cases: both element types, aligned and unaligned rows, each reduction and normalisation, V up to 128k.</summary>
    public static IReadOnlyList<Case> Cases(int largestVocabulary)
    {
        var cases = new List<Case>();
        var seed = 1;
        foreach (var type in new[] { CudaLogitsType.Fp32, CudaLogitsType.Bf16 })
        {
            cases.Add(new("mean-hinge, token mean, mask", seed++, 6, 5, 1000, type, true, new ContrastivePreferenceOptions()));
            cases.Add(new("unaligned V, sum, ignore index", seed++, 5, 4, 257, type, false,
                new ContrastivePreferenceOptions { LengthNormalization = LengthNormalization.Sum, Reduction = RankingReduction.MeanOfHinges }));
            cases.Add(new("32k, hinge-of-max", seed++, 4, 3, Math.Min(32_000, largestVocabulary), type, true,
                new ContrastivePreferenceOptions { Reduction = RankingReduction.HingeOfMax, Margin = 2 }));
            cases.Add(new("long rows, SFT only", seed++, 2, 2, largestVocabulary, type, false, new ContrastivePreferenceOptions { SftOnly = true }));
        }
        return cases;
    }

    public static Outcome Run(IKernelDevice device, Case c)
    {
        var batch = PreferenceTestBatch.Random(c.Seed, c.N, c.T, c.V, c.ExplicitMask);
        var bf16 = c.Type == CudaLogitsType.Bf16;
        var seen = bf16 ? Array.ConvertAll(batch.Logits, x => WidenBf16(NarrowBf16(x))) : batch.Logits;
        var want = (batch with { Logits = seen }).Oracle(c.Options);
        var groupCount = (int)batch.Groups.Max() + 1;
        var rows = (long)c.N * c.T;
        var gradBytes = rows * c.V * (bf16 ? 2 : 4);
        using var owned = new DeviceAllocations(device);
        var logits = bf16 ? owned.Upload(Array.ConvertAll(seen, NarrowBf16)) : owned.Upload(seen);
        var mask = batch.Mask is null ? 0 : owned.Upload(Array.ConvertAll(batch.Mask, m => m ? (byte)1 : (byte)0));
        var inputs = new KernelInputs(logits, c.Type, c.N, c.T, c.V, groupCount, owned.Upload(batch.Targets), mask,
            owned.Upload(batch.Groups), owned.Upload(batch.Ratings), c.Options.IgnoreIndex);
        var grad = owned.Allocate(gradBytes);
        device.Fill(grad, 0xff, gradBytes);
        using var workspace = new LossWorkspace(device, c.N, c.T, groupCount);
        workspace.Poison();

        var kernels = new PreferenceKernels(device);
        kernels.Forward(inputs, workspace.Buffers, c.Options);
        var got = workspace.Read();
        got.ThrowIfInvalid(c.T, c.V);
        kernels.Backward(inputs, workspace.Buffers.Lse, workspace.Buffers.Coeff, workspace.Buffers.Norm, 0, 0, grad);
        device.Synchronize();
        float[] gotGrad;
        if (bf16) gotGrad = Array.ConvertAll(DeviceCopy.ToHost<ushort>(device, grad, (int)(rows * c.V)), WidenBf16);
        else gotGrad = DeviceCopy.ToHost<float>(device, grad, (int)(rows * c.V));

        var (rtol, atol, gradAtol) = bf16 ? (Bf16Tol, Bf16Tol, Bf16GradAtol) : (Fp32Rtol, Fp32Atol, Fp32Atol);
        return new Outcome(c,
            Worst([want.Loss], [got.Loss], rtol, atol),
            Worst(want.Nll, got.Nll, rtol, atol),
            Math.Max(Worst(want.Sft, got.Sft, rtol, atol), Worst(want.Rank, got.Rank, rtol, atol)),
            Worst(want.GradLogits, gotGrad, rtol, gradAtol),
            want.BestHasLowestNll.SequenceEqual(got.BestHasLowestNll()));
    }

    /// <summary>
    /// The kernels as the fused output layer uses them (<c>KernelLogitRowLoss</c>): the rows in the loss gathered and cut
    /// into chunks of <paramref name="chunkRows"/> (which need not divide them, so groups straddle chunk borders), the
    /// row forward kernel on each chunk, then the backward kernel in place over the chunk with one "token" per row and
    /// the oracle's d(loss)/d(token NLL) as each row's coefficient. Token NLLs and gradient rows are compared with the
    /// float64 oracle; <see cref="Outcome.Loss"/> and <see cref="Outcome.Terms"/> are not part of this check (0).
    /// </summary>
    public static Outcome RunFusedChunks(IKernelDevice device, Case c, int chunkRows)
    {
        var batch = PreferenceTestBatch.Random(c.Seed, c.N, c.T, c.V, c.ExplicitMask);
        var bf16 = c.Type == CudaLogitsType.Bf16;
        var seen = bf16 ? Array.ConvertAll(batch.Logits, x => WidenBf16(NarrowBf16(x))) : batch.Logits;
        var want = (batch with { Logits = seen }).Oracle(c.Options);
        var mask = batch.Mask ?? Array.ConvertAll(batch.Targets, id => id != c.Options.IgnoreIndex);
        var active = Enumerable.Range(0, mask.Length).Where(r => mask[r]).ToArray();
        var kernels = new PreferenceKernels(device);
        double nllWorst = 0, gradWorst = 0;
        var (rtol, atol, gradAtol) = bf16 ? (Bf16Tol, Bf16Tol, Bf16GradAtol) : (Fp32Rtol, Fp32Atol, Fp32Atol);
        for (var start = 0; start < active.Length; start += chunkRows)
        {
            var rows = active.Skip(start).Take(chunkRows).ToArray();
            var chunk = rows.SelectMany(r => seen.AsSpan(r * c.V, c.V).ToArray()).ToArray();
            using var owned = new DeviceAllocations(device);
            var logits = bf16 ? owned.Upload(Array.ConvertAll(chunk, NarrowBf16)) : owned.Upload(chunk);
            var inputs = new KernelInputs(logits, c.Type, rows.Length, 1, c.V, 1, owned.Upload(rows.Select(r => batch.Targets[r]).ToArray()),
                0, 0, 0, c.Options.IgnoreIndex);
            var lse = owned.Allocate(rows.Length * 4L);
            var tokenNll = owned.Allocate(rows.Length * 4L);
            var badRow = owned.Upload(new int[1]);
            device.Fill(lse, 0xff, rows.Length * 4L);
            device.Fill(tokenNll, 0xff, rows.Length * 4L);
            kernels.RowForward(inputs, lse, tokenNll, badRow);
            var coefficients = owned.Upload(rows.Select(r => (float)want.TokenCoefficients![r]).ToArray());
            var ones = owned.Upload(Enumerable.Repeat(1f, rows.Length).ToArray());
            kernels.Backward(inputs, lse, coefficients, ones, 0, 0, logits); // in place, as the fused path runs it
            device.Synchronize();

            var gotNll = DeviceCopy.ToHost<float>(device, tokenNll, rows.Length);
            nllWorst = Math.Max(nllWorst, Worst(rows.Select(r => want.TokenNll![r]).ToArray(), gotNll, rtol, atol));
            float[] gotGrad = bf16
                ? Array.ConvertAll(DeviceCopy.ToHost<ushort>(device, logits, chunk.Length), WidenBf16)
                : DeviceCopy.ToHost<float>(device, logits, chunk.Length);
            gradWorst = Math.Max(gradWorst, Worst(rows.SelectMany(r => want.GradLogits.AsSpan(r * c.V, c.V).ToArray()).ToArray(), gotGrad, rtol, gradAtol));
        }
        return new Outcome(c, 0, nllWorst, 0, gradWorst, RankingAgrees: true);
    }

    private static double Worst(double[] expected, float[] actual, double rtol, double atol)
    {
        var worst = 0.0;
        for (var i = 0; i < expected.Length; i++)
        {
            var ratio = Math.Abs(expected[i] - actual[i]) / (atol + rtol * Math.Abs(expected[i]));
            worst = double.IsNaN(ratio) ? double.PositiveInfinity : Math.Max(worst, ratio);
        }
        return worst;
    }

    /// <summary>float32 to bfloat16 bits, round to nearest even (as the kernels store gradients).</summary>
    public static ushort NarrowBf16(float x)
    {
        var u = BitConverter.SingleToUInt32Bits(x);
        if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
        return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }

    public static float WidenBf16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);
}
