using StableAlignment.Core.Interop.Cuda;

namespace StableAlignment.Core.Training;

/// <summary>Runs the kernels on a GPU: the PTX embedded in this assembly, loaded into the device's primary context.</summary>
internal sealed class CudaKernelDevice : IKernelDevice
{
    /// <summary>Manifest name of the PTX compiled from <c>native/cpo_kernels.cu</c> at build time.</summary>
    internal const string PtxResourceName = "StableAlignment.Core.Cuda.cpo_kernels.ptx";

    private readonly CudaContext context;
    private readonly CudaModule module;
    private readonly Dictionary<string, CudaKernel> kernels = new(StringComparer.Ordinal);
    private readonly Dictionary<nint, CudaDeviceBuffer> buffers = [];
    private bool disposed;

    private CudaKernelDevice(CudaContext context, CudaModule module)
    {
        this.context = context;
        this.module = module;
    }

    /// <inheritdoc />
    public string Description => $"CUDA device {context.Device} ({context.DeviceName})";

    /// <inheritdoc />
    public uint BlockSize => 256;

    /// <inheritdoc />
    public uint MaxGridSize => 1u << 20;

    /// <inheritdoc />
    public bool AcceptsCudaTensors => true;

    /// <summary>Whether the driver, a device and the embedded PTX are all there; never throws.</summary>
    public static bool IsAvailable(out string reason)
    {
        if (!CudaContext.IsAvailable(out reason)) return false;
        using var ptx = typeof(CudaKernelDevice).Assembly.GetManifestResourceStream(PtxResourceName);
        if (ptx is null)
        {
            reason = $"the PTX resource {PtxResourceName} is not embedded (the build ran without clang-14)";
            return false;
        }
        return true;
    }

    /// <summary>Opens device 0's primary context and loads the kernels, or throws <see cref="CudaException"/> saying why not.</summary>
    public static CudaKernelDevice Open()
    {
        if (!IsAvailable(out var reason)) throw new CudaException($"CUDA is not available: {reason}.");
        using var stream = typeof(CudaKernelDevice).Assembly.GetManifestResourceStream(PtxResourceName)!;
        using var bytes = new MemoryStream();
        stream.CopyTo(bytes);
        var context = new CudaContext(0);
        try
        {
            return new CudaKernelDevice(context, new CudaModule(context, bytes.ToArray()));
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public nint Allocate(long bytes)
    {
        var buffer = new CudaDeviceBuffer(context, bytes);
        lock (buffers) buffers[buffer.DevicePointer] = buffer;
        return buffer.DevicePointer;
    }

    /// <inheritdoc />
    public void Free(nint pointer)
    {
        CudaDeviceBuffer? buffer;
        lock (buffers)
        {
            if (!buffers.Remove(pointer, out buffer))
                throw new ArgumentException("The pointer was not allocated by this device or was already freed.", nameof(pointer));
        }
        buffer.Dispose();
    }

    /// <inheritdoc />
    public void CopyToDevice(nint destination, nint hostSource, long bytes)
    {
        if (bytes == 0) return;
        context.SetCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuMemcpyHtoD_v2(destination, hostSource, (nuint)bytes), nameof(CudaDriverApi.cuMemcpyHtoD_v2));
    }

    /// <inheritdoc />
    public void CopyToHost(nint hostDestination, nint source, long bytes)
    {
        if (bytes == 0) return;
        context.SetCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuMemcpyDtoH_v2(hostDestination, source, (nuint)bytes), nameof(CudaDriverApi.cuMemcpyDtoH_v2));
    }

    /// <inheritdoc />
    public void CopyWithinDevice(nint destination, nint source, long bytes)
    {
        if (bytes == 0) return;
        context.SetCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuMemcpyDtoD_v2(destination, source, (nuint)bytes), nameof(CudaDriverApi.cuMemcpyDtoD_v2));
    }

    /// <inheritdoc />
    public void Fill(nint destination, byte value, long bytes)
    {
        if (bytes == 0) return;
        context.SetCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuMemsetD8_v2(destination, value, (nuint)bytes), nameof(CudaDriverApi.cuMemsetD8_v2));
    }

    /// <inheritdoc />
    public void Launch(string name, uint grid, uint block, nint arguments)
    {
        CudaKernel? kernel;
        lock (kernels)
        {
            if (!kernels.TryGetValue(name, out kernel))
            {
                kernel = module.GetKernel(name);
                kernels[name] = kernel;
            }
        }
        kernel.Launch(grid, block, arguments);
    }

    /// <inheritdoc />
    public void Synchronize() => context.Synchronize();

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        lock (buffers)
        {
            foreach (var buffer in buffers.Values) buffer.Dispose();
            buffers.Clear();
        }
        module.Dispose();
        context.Dispose();
    }
}
