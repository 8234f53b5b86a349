namespace StableAlignment.Core.Tests.Training.Cuda;

/// <summary>Element-wise closeness with Liger-Kernel-style tolerances.</summary>
internal static class Close
{
    public const double Fp32Rtol = 5e-4, Fp32Atol = 1e-5, Bf16Tol = 5e-2;

    public static void Equal(double expected, double actual, double rtol, double atol, string what)
    {
        if (!(Math.Abs(expected - actual) <= atol + rtol * Math.Abs(expected)))
            Assert.Fail($"{what}: expected {expected:R}, got {actual:R} (rtol {rtol}, atol {atol}).");
    }

    public static void All(IReadOnlyList<double> expected, IReadOnlyList<float> actual, double rtol, double atol, string what)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++) Equal(expected[i], actual[i], rtol, atol, $"{what}[{i}]");
    }
}
