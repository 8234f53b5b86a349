namespace StableAlignment.Core.Interop.Cuda;

/// <summary>A loaded PTX module (ManagedCuda: <c>CUmodule</c> via <c>LoadModulePTX</c>).</summary>
internal sealed class CudaModule : IDisposable
{
    private readonly CudaContext context;
    private bool disposed;

    /// <summary>JIT-loads <paramref name="ptx"/> (NUL-terminated or not) into <paramref name="context"/>.</summary>
    public CudaModule(CudaContext context, ReadOnlySpan<byte> ptx)
    {
        this.context = context;
        context.SetCurrent();
        var image = new byte[ptx.Length + 1]; // the driver reads PTX as a C string
        ptx.CopyTo(image);
        CudaDriverApi.Check(CudaDriverApi.cuModuleLoadDataEx(out var module, image, 0, 0, 0), nameof(CudaDriverApi.cuModuleLoadDataEx));
        Handle = module;
    }

    /// <summary>The CUmodule.</summary>
    public nint Handle { get; }

    /// <summary>Looks up a <c>extern "C" __global__</c> function.</summary>
    public CudaKernel GetKernel(string name)
    {
        CudaDriverApi.Check(CudaDriverApi.cuModuleGetFunction(out var function, Handle, name), $"cuModuleGetFunction({name})");
        return new CudaKernel(context, name, function);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        context.SetCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuModuleUnload(Handle), nameof(CudaDriverApi.cuModuleUnload));
    }
}

/// <summary>A kernel function of a <see cref="CudaModule"/> (ManagedCuda: <c>CudaKernel</c>).</summary>
internal sealed class CudaKernel
{
    private readonly CudaContext context;

    internal CudaKernel(CudaContext context, string name, nint function)
    {
        this.context = context;
        Name = name;
        Handle = function;
    }

    /// <summary>The kernel's name.</summary>
    public string Name { get; }

    /// <summary>The CUfunction.</summary>
    public nint Handle { get; }

    /// <summary>Launches on the null stream (asynchronously) with a 1-D grid and block.</summary>
    /// <param name="grid">Blocks.</param>
    /// <param name="block">Threads per block.</param>
    /// <param name="arguments">Pointer to an array of pointers to each argument, as cuLaunchKernel takes.</param>
    public void Launch(uint grid, uint block, nint arguments)
    {
        context.SetCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuLaunchKernel(Handle, grid, 1, 1, block, 1, 1, 0, 0, arguments, 0), $"cuLaunchKernel({Name})");
    }
}
