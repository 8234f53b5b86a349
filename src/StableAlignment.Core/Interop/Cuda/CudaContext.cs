using System.Text;

namespace StableAlignment.Core.Interop.Cuda;

/// <summary>
/// The primary context of one device (shaped like ManagedCuda's <c>PrimaryContext</c>). The primary context is the
/// one the CUDA runtime, and so libtorch, uses: device pointers of TorchSharp CUDA tensors are valid in it.
/// </summary>
internal sealed class CudaContext : IDisposable
{
    private static readonly Lock InitLock = new();
    private static string? initFailure;
    private static bool initialised;
    private bool disposed;

    /// <summary>Retains the primary context of device <paramref name="ordinal"/> and makes it current.</summary>
    public CudaContext(int ordinal = 0)
    {
        if (!IsAvailable(out var reason)) throw new CudaException($"CUDA is not available: {reason}");
        CudaDriverApi.Check(CudaDriverApi.cuDeviceGet(out var device, ordinal), nameof(CudaDriverApi.cuDeviceGet));
        CudaDriverApi.Check(CudaDriverApi.cuDevicePrimaryCtxRetain(out var context, device), nameof(CudaDriverApi.cuDevicePrimaryCtxRetain));
        Device = device;
        Handle = context;
        SetCurrent();
        Span<byte> name = stackalloc byte[256];
        CudaDriverApi.Check(CudaDriverApi.cuDeviceGetName(name, name.Length, device), nameof(CudaDriverApi.cuDeviceGetName));
        var end = name.IndexOf((byte)0);
        DeviceName = Encoding.UTF8.GetString(end < 0 ? name : name[..end]);
    }

    /// <summary>The CUdevice.</summary>
    public int Device { get; }

    /// <summary>The CUcontext.</summary>
    public nint Handle { get; }

    /// <summary>The device's marketing name.</summary>
    public string DeviceName { get; }

    /// <summary>
    /// Whether the driver loads, initialises and reports at least one device. Never throws: a missing
    /// <c>libcuda.so.1</c> or a driver error becomes <paramref name="reason"/>.
    /// </summary>
    public static bool IsAvailable(out string reason)
    {
        lock (InitLock)
        {
            if (!initialised)
            {
                initialised = true;
                initFailure = TryInitialise();
            }
        }
        reason = initFailure ?? "";
        return initFailure is null;
    }

    private static string? TryInitialise()
    {
        try
        {
            var result = CudaDriverApi.cuInit(0);
            if (result != 0) return $"cuInit failed with {CudaDriverApi.ErrorName(result)}";
            result = CudaDriverApi.cuDeviceGetCount(out var count);
            if (result != 0) return $"cuDeviceGetCount failed with {CudaDriverApi.ErrorName(result)}";
            return count > 0 ? null : "the CUDA driver reports no device";
        }
        catch (DllNotFoundException)
        {
            return "the CUDA driver library libcuda.so.1 could not be loaded (no NVIDIA driver on this machine?)";
        }
        catch (EntryPointNotFoundException e)
        {
            return $"the CUDA driver is too old: {e.Message}";
        }
    }

    /// <summary>Makes this context current on the calling thread (a no-op when it already is).</summary>
    public void SetCurrent() => CudaDriverApi.Check(CudaDriverApi.cuCtxSetCurrent(Handle), nameof(CudaDriverApi.cuCtxSetCurrent));

    /// <summary>Waits for all work in the context.</summary>
    public void Synchronize() => CudaDriverApi.Check(CudaDriverApi.cuCtxSynchronize(), nameof(CudaDriverApi.cuCtxSynchronize));

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        CudaDriverApi.Check(CudaDriverApi.cuDevicePrimaryCtxRelease_v2(Device), nameof(CudaDriverApi.cuDevicePrimaryCtxRelease_v2));
    }
}
