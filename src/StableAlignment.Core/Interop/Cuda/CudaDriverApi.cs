using System.Runtime.InteropServices;

namespace StableAlignment.Core.Interop.Cuda;

/// <summary>
/// The few entry points of the CUDA driver API (<c>libcuda.so.1</c>) the kernels need. Every call returns a
/// CUresult that <see cref="Check"/> turns into a <see cref="CudaException"/> carrying the error name.
/// </summary>
internal static partial class CudaDriverApi
{
    private const string Library = "libcuda.so.1";

    [LibraryImport(Library)] internal static partial int cuInit(uint flags);
    [LibraryImport(Library)] internal static partial int cuDriverGetVersion(out int version);
    [LibraryImport(Library)] internal static partial int cuDeviceGetCount(out int count);
    [LibraryImport(Library)] internal static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Library)] internal static partial int cuDeviceGetName(Span<byte> name, int length, int device);
    [LibraryImport(Library)] internal static partial int cuDevicePrimaryCtxRetain(out nint context, int device);
    [LibraryImport(Library)] internal static partial int cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(Library)] internal static partial int cuCtxSetCurrent(nint context);
    [LibraryImport(Library)] internal static partial int cuCtxSynchronize();
    [LibraryImport(Library)] internal static partial int cuModuleLoadDataEx(out nint module, ReadOnlySpan<byte> image, uint optionCount, nint options, nint optionValues);
    [LibraryImport(Library)] internal static partial int cuModuleUnload(nint module);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] internal static partial int cuModuleGetFunction(out nint function, nint module, string name);
    [LibraryImport(Library)] internal static partial int cuMemAlloc_v2(out nint devicePointer, nuint bytes);
    [LibraryImport(Library)] internal static partial int cuMemFree_v2(nint devicePointer);
    [LibraryImport(Library)] internal static partial int cuMemcpyHtoD_v2(nint destination, nint source, nuint bytes);
    [LibraryImport(Library)] internal static partial int cuMemcpyDtoH_v2(nint destination, nint source, nuint bytes);
    [LibraryImport(Library)] internal static partial int cuMemcpyDtoD_v2(nint destination, nint source, nuint bytes);
    [LibraryImport(Library)] internal static partial int cuMemsetD8_v2(nint destination, byte value, nuint count);
    [LibraryImport(Library)] internal static partial int cuMemsetD32_v2(nint destination, uint value, nuint count);
    [LibraryImport(Library)]
    internal static partial int cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedBytes, nint stream, nint arguments, nint extra);
    [LibraryImport(Library)] internal static partial int cuStreamSynchronize(nint stream);
    [LibraryImport(Library)] internal static partial int cuEventCreate(out nint cudaEvent, uint flags);
    [LibraryImport(Library)] internal static partial int cuEventDestroy_v2(nint cudaEvent);
    [LibraryImport(Library)] internal static partial int cuEventRecord(nint cudaEvent, nint stream);
    [LibraryImport(Library)] internal static partial int cuEventSynchronize(nint cudaEvent);
    [LibraryImport(Library)] internal static partial int cuEventElapsedTime(out float milliseconds, nint start, nint end);
    [LibraryImport(Library)] internal static partial int cuGetErrorName(int error, out nint name);
    [LibraryImport(Library)] internal static partial int cuGetErrorString(int error, out nint text);

    /// <summary>Throws a <see cref="CudaException"/> naming the failed call when <paramref name="result"/> is not CUDA_SUCCESS.</summary>
    internal static void Check(int result, string call)
    {
        if (result != 0) throw new CudaException(result, ErrorName(result), ErrorText(result), call);
    }

    internal static string ErrorName(int result) =>
        cuGetErrorName(result, out var p) == 0 && p != 0 ? Marshal.PtrToStringUTF8(p) ?? $"CUresult {result}" : $"CUresult {result}";

    private static string ErrorText(int result) =>
        cuGetErrorString(result, out var p) == 0 && p != 0 ? Marshal.PtrToStringUTF8(p) ?? "" : "";
}
