namespace StableAlignment.Core.Training;

/// <summary>
/// Where the preference-loss kernels run: a GPU through the CUDA driver, or (in tests) the CPU build of the
/// same kernel source. Pointers are device addresses of that target; launches take cuLaunchKernel-style arguments.
/// </summary>
internal interface IKernelDevice : IDisposable
{
    /// <summary>What runs the kernels, for messages and reports.</summary>
    string Description { get; }

    /// <summary>Threads per block for the row kernels (a multiple of 32, at most 1024).</summary>
    uint BlockSize { get; }

    /// <summary>Upper bound on blocks per launch; rows beyond it are strided over the grid.</summary>
    uint MaxGridSize { get; }

    /// <summary>Whether the memory of TorchSharp CUDA tensors is addressable here (device pointers in the primary context).</summary>
    bool AcceptsCudaTensors { get; }

    /// <summary>Allocates device memory (256-byte aligned).</summary>
    nint Allocate(long bytes);

    /// <summary>Frees memory from <see cref="Allocate"/>.</summary>
    void Free(nint pointer);

    /// <summary>Copies host memory to the device.</summary>
    void CopyToDevice(nint destination, nint hostSource, long bytes);

    /// <summary>Copies device memory to the host (waits for preceding launches).</summary>
    void CopyToHost(nint hostDestination, nint source, long bytes);

    /// <summary>Copies device memory to device memory.</summary>
    void CopyWithinDevice(nint destination, nint source, long bytes);

    /// <summary>Sets every byte of device memory to <paramref name="value"/>.</summary>
    void Fill(nint destination, byte value, long bytes);

    /// <summary>Launches kernel <paramref name="name"/> with a 1-D grid; <paramref name="arguments"/> points to an array of argument pointers.</summary>
    void Launch(string name, uint grid, uint block, nint arguments);

    /// <summary>Waits for every launch to finish.</summary>
    void Synchronize();
}
