using System.Runtime.InteropServices;
using StableAlignment.Core.Training;

namespace StableAlignment.Core.Tests.Training.Cuda;

/// <summary>
/// Runs the kernels through libcpo_emulation.so, the g++ build of the same cpo_kernels.cu: "device" memory is
/// host memory and launches go through a cuLaunchKernel-shaped entry point.
/// </summary>
internal sealed unsafe partial class EmulatedKernelDevice(uint blockSize = 64, uint maxGridSize = 64) : IKernelDevice
{
    private readonly HashSet<nint> live = [];
    private string? dropped;

    public string Description => $"CPU emulation (block {BlockSize}, grid <= {MaxGridSize})";

    public uint BlockSize { get; } = blockSize;

    public uint MaxGridSize { get; } = maxGridSize;

    public bool AcceptsCudaTensors => false;

    /// <summary>Number of launches so far (to check which kernels ran).</summary>
    public int Launches { get; private set; }

    public nint Allocate(long bytes)
    {
        var p = (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 256);
        // Poison: a kernel that forgets to write an output leaves NaN-like garbage that the comparisons catch.
        NativeMemory.Fill((void*)p, (nuint)Math.Max(bytes, 1), 0xff);
        lock (live) live.Add(p);
        return p;
    }

    public void Free(nint pointer)
    {
        lock (live)
        {
            if (!live.Remove(pointer)) throw new InvalidOperationException("Freeing memory that was not allocated here.");
        }
        NativeMemory.AlignedFree((void*)pointer);
    }

    public int LiveAllocations
    {
        get { lock (live) return live.Count; }
    }

    public void CopyToDevice(nint destination, nint hostSource, long bytes) => Buffer.MemoryCopy((void*)hostSource, (void*)destination, bytes, bytes);

    public void CopyToHost(nint hostDestination, nint source, long bytes) => Buffer.MemoryCopy((void*)source, (void*)hostDestination, bytes, bytes);

    public void CopyWithinDevice(nint destination, nint source, long bytes) => Buffer.MemoryCopy((void*)source, (void*)destination, bytes, bytes);

    public void Fill(nint destination, byte value, long bytes) => NativeMemory.Fill((void*)destination, (nuint)bytes, value);

    /// <summary>Makes launches of <paramref name="kernel"/> do nothing, to check that tests notice a missing output.</summary>
    public EmulatedKernelDevice WithoutKernel(string kernel)
    {
        dropped = kernel;
        return this;
    }

    public void Launch(string name, uint grid, uint block, nint arguments)
    {
        if (name == dropped) return;
        var result = cpo_emu_launch(name, grid, block, arguments);
        if (result != 0) throw new InvalidOperationException($"Emulated launch of {name} failed with code {result}.");
        Launches++;
    }

    public void Synchronize()
    {
    }

    public void Dispose()
    {
    }

    [LibraryImport("cpo_emulation", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int cpo_emu_launch(string name, uint grid, uint block, nint arguments);
}
