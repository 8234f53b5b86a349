using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.TestSupport;

/// <summary>
/// A fact that needs torch on a CUDA device, not only a CUDA driver: skipped where torch has none, as with the
/// TorchSharp-cpu build these tests reference.
/// </summary>
public sealed class TorchCudaFactAttribute : FactAttribute
{
    public TorchCudaFactAttribute()
    {
        if (!cuda.is_available()) Skip = "torch has no CUDA device here (these tests reference TorchSharp-cpu).";
    }
}
