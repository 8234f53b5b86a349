using FsCheck;
using FsCheck.Xunit;
using StableAlignment.Core.Tests.Training;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training.Cuda;

/// <summary>
/// <see cref="ContrastivePreferenceLoss.ComputeFromHidden"/> with its per-chunk loss work in the kernels (their CPU
/// build, through the same device-pointer path the GPU takes) against the float64 oracle with logits = H·Wᵀ: chunk
/// sizes that do and do not divide the rows in the loss, both gradient schedules, float32 and bfloat16.
/// </summary>
public sealed class FusedKernelChunkTests
{
    [Property(MaxTest = 20)]
    public void Float32_chunks_through_the_kernels_match_the_oracle(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var options = PreferenceTestBatch.RandomOptions(rng);
        var n = rng.Next(1, 6);
        var c = LossCases.BuildHidden(n, rng.Next(1, 5), rng.Next(1, 9), rng.Next(2, 200), rng.Next(1, n + 1), integerRatings: true, seed.Get);
        var device = new EmulatedKernelDevice(blockSize: 32, maxGridSize: 3);
        using var loss = new ContrastivePreferenceLoss(options, device)
        {
            FusedChunkRows = rng.Next(1, 9),
            FusedSchedule = rng.Next(2) == 0 ? FusedGradientSchedule.FoldedInForward : FusedGradientSchedule.RecomputeInBackward,
        };
        var got = FusedOutputLossTests.RunFused(c, loss, ScalarType.Float32);
        Assert.True(device.Launches > 0, "the kernels did not run");
        Assert.True(FusedOutputLossTests.MatchesOracle(got, PreferenceLossOracle.Compute(c, options), Close.Fp32Rtol, Close.Fp32Atol), $"{c} {options}");
    }

    [Fact]
    public void Bfloat16_chunks_through_the_kernels_match_the_oracle_on_the_values_they_see()
    {
        var c = LossCases.BuildHidden(n: 5, t: 4, h: 8, v: 300, groupCount: 2, integerRatings: true, seed: 12);
        static double[] Round(double[] x) => torch.tensor(x).to(ScalarType.BFloat16).to(ScalarType.Float64).data<double>().ToArray();
        var want = PreferenceLossOracle.Compute(c with { Hidden = Round(c.Hidden), Weight = Round(c.Weight) }, new ContrastivePreferenceOptions());
        using var loss = new ContrastivePreferenceLoss(null, new EmulatedKernelDevice()) { FusedChunkRows = 6 };
        var got = FusedOutputLossTests.RunFused(c, loss, ScalarType.BFloat16);
        Assert.True(FusedOutputLossTests.MatchesOracle(got, want, Close.Bf16Tol, 2e-3), c.ToString());
    }
}
