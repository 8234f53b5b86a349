using FsCheck;
using FsCheck.Xunit;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training.Cuda;

/// <summary>
/// The kernels (CPU build, through the autograd path) against the TorchSharp reference <see cref="ContrastivePreferenceLoss"/>
/// on the same random batches: loss, every per-response NLL, per-group terms, ranking accuracy and grad_logits.
/// </summary>
public sealed class CudaVersusReferenceTests
{
    [EmulatedKernelProperty(MaxTest = 25)]
    public void Float32_kernels_match_the_torchsharp_reference(PositiveInt seed) =>
        Compare(seed.Get, ScalarType.Float32, Close.Fp32Rtol, Close.Fp32Atol, Close.Fp32Atol);

    [EmulatedKernelProperty(MaxTest = 10)]
    public void Bfloat16_kernels_match_the_torchsharp_reference(PositiveInt seed) =>
        Compare(seed.Get, ScalarType.BFloat16, Close.Bf16Tol, Close.Bf16Tol, 1e-3);

    private static void Compare(int seed, ScalarType type, double rtol, double atol, double gradAtol)
    {
        var rng = new Random(seed);
        var options = PreferenceTestBatch.RandomOptions(rng);
        var batch = PreferenceTestBatch.Random(seed, rng.Next(1, 7), rng.Next(1, 5), rng.Next(2, 300), explicitMask: rng.Next(2) == 0);
        using var scope = NewDisposeScope();
        var targets = torch.tensor(batch.Targets, [batch.N, batch.T]);
        var groups = torch.tensor(batch.Groups);
        var ratings = torch.tensor(batch.Ratings);
        var mask = batch.Mask is null ? null : torch.tensor(batch.Mask, [batch.N, batch.T]);
        var logits = torch.tensor(batch.Logits, [batch.N, batch.T, batch.V]).to_type(type);

        // Reference in float64 on the very values the kernels see.
        var refLogits = logits.to_type(ScalarType.Float64).detach().requires_grad_();
        using var want = new ContrastivePreferenceLoss(options).Compute(refLogits, targets, groups, ratings, mask);
        want.Loss.backward();

        var cudaLogits = logits.detach().requires_grad_();
        using var loss = new CudaContrastivePreferenceLoss(options, new EmulatedKernelDevice());
        using var got = loss.Compute(cudaLogits, targets, groups, ratings, mask);
        got.Loss.backward();

        static double[] D(Tensor x) => x.detach().to_type(ScalarType.Float64).data<double>().ToArray();
        static float[] F(Tensor x) => x.detach().to_type(ScalarType.Float32).data<float>().ToArray();
        Close.Equal(want.Loss.item<double>(), got.Loss.item<float>(), rtol, atol, "loss");
        Close.All(D(want.ResponseNll), F(got.ResponseNll), rtol, atol, "nll");
        Close.All(D(want.SftTerms), F(got.SftTerms), rtol, atol, "sft");
        Close.All(D(want.RankingTerms), F(got.RankingTerms), rtol, atol, "rank");
        Assert.Equal(want.BestHasLowestNll, got.BestHasLowestNll);
        Assert.Equal(type, cudaLogits.grad!.dtype);
        Close.All(D(refLogits.grad!), F(cudaLogits.grad), rtol, gradAtol, "grad");
    }
}
