using System.Runtime.InteropServices;

namespace StableAlignment.Core.Training;

/// <summary>
/// What the trainer asks of glibc's allocator. By default glibc raises its mapping threshold to 32 MiB after the first
/// large free, so a layer's activations come from its heap, which fragments as layers allocate and free: a real-size
/// training step then keeps gigabytes it no longer uses. <see cref="ReleaseFreePages"/> hands those pages back at a
/// few points of a step (<see cref="TrainerOptions.HeapTrimThresholdBytes"/>); <see cref="MapLargeAllocations"/> gives
/// every buffer of <see cref="MappedFromBytes"/> and more pages of its own (<see cref="TrainerOptions.ReturnFreedMemory"/>).
/// </summary>
internal static partial class GlibcAllocator
{
    /// <summary>glibc's <c>M_MMAP_THRESHOLD</c> (malloc.h); setting it also stops glibc from raising it.</summary>
    private const int MmapThreshold = -3;

    /// <summary>Allocations from this size on are mapped: activations and weights are, small bookkeeping is not.</summary>
    private const int MappedFromBytes = 1 << 20;

    /// <summary>False once <c>mallinfo2</c> or <c>malloc_trim</c> turned out to be missing (not glibc, or before 2.33).</summary>
    private static bool _canTrim = OperatingSystem.IsLinux();

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

    /// <summary>
    /// Hands the heap's free pages back to the system (<c>malloc_trim</c>) when its free chunks hold more than
    /// <paramref name="thresholdBytes"/>; a non-positive threshold never trims. False where it did not trim, or where
    /// this is not glibc (2.33 or later, for <c>mallinfo2</c>).
    /// </summary>
    public static bool ReleaseFreePages(long thresholdBytes)
    {
        if (thresholdBytes <= 0 || !_canTrim) return false;
        try
        {
            // Free chunks whose pages were handed back still count as free: a second trim right after the first only
            // repeats cheap madvise calls, and finds nothing to return.
            if ((long)MallInfo2().FreeBytes <= thresholdBytes) return false;
            return MallocTrim(0) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _canTrim = false;
            return false;
        }
    }

    /// <summary>glibc's <c>struct mallinfo2</c> (malloc.h), of which only the free bytes are read.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct MallocInfo
    {
        private readonly nuint _arena, _ordblks, _smblks, _hblks, _hblkhd, _usmblks, _fsmblks, _uordblks, _fordblks, _keepcost;

        /// <summary>Bytes in free chunks of every arena (<c>fordblks</c>).</summary>
        public nuint FreeBytes => _fordblks;
    }

    [LibraryImport("libc.so.6", EntryPoint = "mallinfo2")]
    private static partial MallocInfo MallInfo2();

    [LibraryImport("libc.so.6", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    [LibraryImport("libc.so.6", EntryPoint = "mallopt")]
    private static partial int Mallopt(int parameter, int value);
}
