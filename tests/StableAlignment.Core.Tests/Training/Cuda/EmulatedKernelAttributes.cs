using FsCheck.Xunit;

namespace StableAlignment.Core.Tests.Training.Cuda;

/// <summary>
/// Whether the CPU build of the kernels (libcpo_emulation.so, built by CMake and g++ with the tests) is beside the test
/// assembly. Outside CI a machine without CMake or g++ skips these tests with the reason; in CI (<c>CI=true</c>) they
/// always run, so a missing build fails loudly instead of skipping quietly.
/// </summary>
internal static class EmulatedKernels
{
    public static string? SkipReason { get; } = Find();

    private static string? Find()
    {
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase)) return null;
        if (!OperatingSystem.IsLinux()) return "The CPU build of the CUDA kernels is made on Linux only.";
        return File.Exists(Path.Combine(AppContext.BaseDirectory, "libcpo_emulation.so")) ? null
            : "libcpo_emulation.so was not built: the CPU build of the kernels needs CMake and g++ (see README); install them to run these tests.";
    }
}

/// <summary>A fact on the CPU build of the kernels.</summary>
public sealed class EmulatedKernelFactAttribute : FactAttribute
{
    public EmulatedKernelFactAttribute()
    {
        if (EmulatedKernels.SkipReason is { } reason) Skip = reason;
    }
}

/// <summary>A theory on the CPU build of the kernels.</summary>
public sealed class EmulatedKernelTheoryAttribute : TheoryAttribute
{
    public EmulatedKernelTheoryAttribute()
    {
        if (EmulatedKernels.SkipReason is { } reason) Skip = reason;
    }
}

/// <summary>An FsCheck property on the CPU build of the kernels.</summary>
public sealed class EmulatedKernelPropertyAttribute : PropertyAttribute
{
    public EmulatedKernelPropertyAttribute()
    {
        if (EmulatedKernels.SkipReason is { } reason) Skip = reason;
    }
}
