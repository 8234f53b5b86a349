using StableAlignment.Core.Training;

namespace StableAlignment.Core.Tests.Training.Cuda;

/// <summary>The device-pointer API, with the CPU build's "device" memory standing in for GPU memory.</summary>
public sealed class CudaDevicePointerTests
{
    [EmulatedKernelTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void Device_batches_write_the_gradient_in_place_and_match_the_oracle(bool explicitMask)
    {
        var options = new ContrastivePreferenceOptions { Reduction = RankingReduction.MeanOfHinges, LengthNormalization = LengthNormalization.Sum };
        var batch = PreferenceTestBatch.Random(31, 5, 4, 77, explicitMask, groupCount: 2);
        var device = new EmulatedKernelDevice();
        var owned = new DeviceAllocations(device);
        var grad = owned.Allocate(batch.Logits.Length * sizeof(float));
        using var loss = new CudaContrastivePreferenceLoss(options, device);
        var got = loss.Compute(new CudaPreferenceDeviceBatch(
            owned.Upload(batch.Logits), CudaLogitsType.Fp32, batch.N, batch.T, batch.V, owned.Upload(batch.Targets), owned.Upload(batch.Groups), owned.Upload(batch.Ratings),
            batch.Mask is null ? 0 : owned.Upload(Array.ConvertAll(batch.Mask, m => m ? (byte)1 : (byte)0)), grad));

        var want = batch.Oracle(options);
        Close.Equal(want.Loss, got.Loss, Close.Fp32Rtol, Close.Fp32Atol, "loss");
        Close.All(want.Nll, got.ResponseNll, Close.Fp32Rtol, Close.Fp32Atol, "nll");
        Assert.Null(got.GradLogits);
        Close.All(want.GradLogits, DeviceCopy.ToHost<float>(device, grad, batch.Logits.Length), Close.Fp32Rtol, Close.Fp32Atol, "grad");
        owned.Dispose();
        Assert.Equal(0, device.LiveAllocations);
    }

    [EmulatedKernelFact]
    public void A_null_device_pointer_is_rejected()
    {
        using var loss = new CudaContrastivePreferenceLoss(null, new EmulatedKernelDevice());
        var e = Assert.Throws<ArgumentException>(() => loss.Compute(new CudaPreferenceDeviceBatch(0, CudaLogitsType.Fp32, 1, 1, 1, 0, 0, 0)));
        Assert.Contains("device pointers", e.Message, StringComparison.Ordinal);
    }
}
