using StableAlignment.Core.Training;
using StableAlignment.GpuCheck;

namespace StableAlignment.Core.Tests.Training.Cuda;

/// <summary>A fact that needs a CUDA driver and GPU; skipped with the driver's reason where there is none.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (!CudaContrastivePreferenceLoss.IsAvailable(out var reason)) Skip = $"No CUDA GPU: {reason}.";
    }
}

/// <summary>The GPU checker's correctness pass on the CPU build, and the same checks on a real GPU when there is one.</summary>
public sealed class CudaDeviceTests
{
    public static TheoryData<int> CheckerCases() => new(Enumerable.Range(0, KernelCheck.Cases(4096).Count));

    [EmulatedKernelTheory]
    [MemberData(nameof(CheckerCases))]
    public void The_gpu_checkers_cases_pass_on_the_cpu_build_of_the_kernels(int index)
    {
        var c = KernelCheck.Cases(4096)[index];
        var outcome = KernelCheck.Run(new EmulatedKernelDevice(), c);
        Assert.True(outcome.Passed, $"{c.Name} ({c.Type}): {outcome}");
    }

    [EmulatedKernelFact]
    public void The_checker_catches_an_output_the_kernels_leave_unwritten()
    {
        // A device that drops the backward launch leaves the poisoned (NaN) gradient in place.
        var outcome = KernelCheck.Run(new EmulatedKernelDevice().WithoutKernel("cpo_backward_f32"), KernelCheck.Cases(4096)[0]);
        Assert.False(outcome.Passed);
        Assert.Equal(double.PositiveInfinity, outcome.Grad);
    }

    [Theory]
    [MemberData(nameof(CheckerCases))]
    public void The_gpu_checkers_fused_chunk_cases_pass_on_the_cpu_build_of_the_kernels(int index)
    {
        var c = KernelCheck.Cases(4096)[index];
        // 7 rows per chunk: it divides no case's rows in the loss, so chunks end inside responses and groups.
        var outcome = KernelCheck.RunFusedChunks(new EmulatedKernelDevice(), c, chunkRows: 7);
        Assert.True(outcome.Passed, $"{c.Name} ({c.Type}): {outcome}");
    }

    [Fact]
    public void The_fused_chunk_check_catches_a_backward_kernel_that_does_not_run()
    {
        // In place, a dropped backward launch leaves the chunk's logits where its gradient should be.
        var outcome = KernelCheck.RunFusedChunks(new EmulatedKernelDevice().WithoutKernel("cpo_backward_f32"), KernelCheck.Cases(4096)[0], chunkRows: 7);
        Assert.False(outcome.Passed);
    }

    [CudaFact]
    public void On_a_gpu_the_checkers_cases_pass()
    {
        using var device = CudaKernelDevice.Open();
        foreach (var c in KernelCheck.Cases(131_072))
        {
            Assert.True(KernelCheck.Run(device, c).Passed, c.Name);
            Assert.True(KernelCheck.RunFusedChunks(device, c, chunkRows: 64).Passed, $"{c.Name}, fused chunks");
        }
    }

    [CudaFact]
    public void On_a_gpu_the_host_array_api_matches_the_oracle()
    {
        var options = new ContrastivePreferenceOptions { Reduction = RankingReduction.HingeOfMax };
        var batch = PreferenceTestBatch.Random(17, 6, 7, 3001, explicitMask: true);
        using var loss = new CudaContrastivePreferenceLoss(options);
        var got = loss.Compute(batch.ToHost());
        var want = batch.Oracle(options);
        Close.Equal(want.Loss, got.Loss, Close.Fp32Rtol, Close.Fp32Atol, "loss");
        Close.All(want.GradLogits, got.GradLogits!, Close.Fp32Rtol, Close.Fp32Atol, "grad");
    }
}
