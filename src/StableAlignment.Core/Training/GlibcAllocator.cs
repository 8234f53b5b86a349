using System.Runtime.InteropServices;

namespace StableAlignment.Core.Training;

/// <summary>
/// The one setting of glibc's allocator the trainer changes (<see cref="TrainerOptions.ReturnFreedMemory"/>): buffers of
/// <see cref="MappedFromBytes"/> and more get pages of their own, returned to the system when freed. By default glibc
/// raises that threshold to 32 MiB after the first large free, so a layer's activations come from its heap, which
/// fragments as layers allocate and free: a real-size training step then keeps gigabytes it no longer uses.
/// </summary>
internal static partial class GlibcAllocator
{
    /// <summary>glibc's <c>M_MMAP_THRESHOLD</c> (malloc.h); setting it also stops glibc from raising it.</summary>
    private const int MmapThreshold = -3;

    /// <summary>Allocations from this size on are mapped: activations and weights are, small bookkeeping is not.</summary>
    private const int MappedFromBytes = 1 << 20;

    /// <summary>
    /// Maps every allocation of <see cref="MappedFromBytes"/> or more from now on, for the whole process; false where
    /// this is not glibc or the host chose a threshold itself (<c>MALLOC_MMAP_THRESHOLD_</c>).
    /// </summary>
    public static bool MapLargeAllocations()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null) return false;
        try
        {
            return Mallopt(MmapThreshold, MappedFromBytes) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false; // musl and other C libraries: their own policy stands.
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "mallopt")]
    private static partial int Mallopt(int parameter, int value);
}
