namespace StableAlignment.Core.Interop.Cuda;

/// <summary>Device memory owned by this object (ManagedCuda: <c>CudaDeviceVariable&lt;T&gt;</c>, untyped here).</summary>
internal sealed class CudaDeviceBuffer : IDisposable
{
    private readonly CudaContext context;
    private bool disposed;

    /// <summary>Allocates <paramref name="bytes"/> bytes (at least one) of device memory.</summary>
    public CudaDeviceBuffer(CudaContext context, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        this.context = context;
        context.SetCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuMemAlloc_v2(out var pointer, (nuint)Math.Max(bytes, 1)), nameof(CudaDriverApi.cuMemAlloc_v2));
        DevicePointer = pointer;
        SizeInBytes = bytes;
    }

    /// <summary>The CUdeviceptr.</summary>
    public nint DevicePointer { get; }

    /// <summary>Size in bytes.</summary>
    public long SizeInBytes { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        context.SetCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuMemFree_v2(DevicePointer), nameof(CudaDriverApi.cuMemFree_v2));
    }
}

/// <summary>A CUDA event, for timing with device clocks.</summary>
internal sealed class CudaEvent : IDisposable
{
    private bool disposed;

    /// <summary>Creates an event with timing enabled.</summary>
    public CudaEvent()
    {
        CudaDriverApi.Check(CudaDriverApi.cuEventCreate(out var handle, 0), nameof(CudaDriverApi.cuEventCreate));
        Handle = handle;
    }

    /// <summary>The CUevent.</summary>
    public nint Handle { get; }

    /// <summary>Records the event on the null stream.</summary>
    public void Record() => CudaDriverApi.Check(CudaDriverApi.cuEventRecord(Handle, 0), nameof(CudaDriverApi.cuEventRecord));

    /// <summary>Milliseconds between <paramref name="start"/> and this event, once it has completed.</summary>
    public float ElapsedSince(CudaEvent start)
    {
        CudaDriverApi.Check(CudaDriverApi.cuEventSynchronize(Handle), nameof(CudaDriverApi.cuEventSynchronize));
        CudaDriverApi.Check(CudaDriverApi.cuEventElapsedTime(out var ms, start.Handle, Handle), nameof(CudaDriverApi.cuEventElapsedTime));
        return ms;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        CudaDriverApi.Check(CudaDriverApi.cuEventDestroy_v2(Handle), nameof(CudaDriverApi.cuEventDestroy_v2));
    }
}
