using System.Runtime.InteropServices;
using TorchSharp;

namespace StableAlignment.Core.Training;

/// <summary>
/// Gives the kernels device addresses for TorchSharp tensors: a CUDA tensor's own storage (primary context,
/// no copy), or a device copy of a CPU tensor that is freed on dispose. Tensors must be contiguous.
/// </summary>
internal sealed partial class TensorStaging(IKernelDevice device) : IDisposable
{
    private readonly DeviceAllocations owned = new(device);
    private readonly List<(nint Device, torch.Tensor Host)> pendingOutputs = [];

    /// <summary>Device address of an input tensor's data.</summary>
    public nint In(torch.Tensor tensor)
    {
        if (IsOnDevice(tensor)) return DataPointer(tensor);
        var bytes = Bytes(tensor);
        var p = owned.Allocate(bytes);
        device.CopyToDevice(p, DataPointer(tensor), bytes);
        return p;
    }

    /// <summary>Device address the kernels write <paramref name="tensor"/> through; CPU tensors are filled by <see cref="CopyOut"/>.</summary>
    public nint Out(torch.Tensor tensor)
    {
        if (IsOnDevice(tensor)) return DataPointer(tensor);
        var p = owned.Allocate(Bytes(tensor));
        pendingOutputs.Add((p, tensor));
        return p;
    }

    /// <summary>Copies device memory at <paramref name="source"/> into <paramref name="destination"/>, wherever it lives.</summary>
    public void Download(nint source, torch.Tensor destination)
    {
        if (IsOnDevice(destination)) device.CopyWithinDevice(DataPointer(destination), source, Bytes(destination));
        else device.CopyToHost(DataPointer(destination), source, Bytes(destination));
    }

    /// <summary>Fills the CPU tensors registered through <see cref="Out"/>.</summary>
    public void CopyOut()
    {
        foreach (var (p, host) in pendingOutputs) device.CopyToHost(DataPointer(host), p, Bytes(host));
        pendingOutputs.Clear();
    }

    public void Dispose() => owned.Dispose();

    private bool IsOnDevice(torch.Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CUDA) return false;
        if (!device.AcceptsCudaTensors)
            throw new ArgumentException($"A CUDA tensor was given but the kernels run on {device.Description}.", nameof(tensor));
        if (tensor.device_index > 0)
            throw new ArgumentException($"Tensors on cuda:{tensor.device_index} are not supported; the kernels run on device 0.", nameof(tensor));
        return true;
    }

    private static long Bytes(torch.Tensor tensor) => tensor.NumberOfElements * tensor.ElementSize;

    /// <summary>Address of a contiguous tensor's first element (device memory for CUDA tensors, host memory for CPU ones).</summary>
    internal static nint DataPointer(torch.Tensor tensor)
    {
        if (!tensor.is_contiguous()) throw new ArgumentException("The kernels need contiguous tensors.", nameof(tensor));
        return THSTensor_data(tensor.Handle);
    }

    // TorchSharp's native data_ptr(); the managed API has no public accessor for a CUDA tensor's address.
    [LibraryImport("LibTorchSharp")]
    private static partial nint THSTensor_data(nint handle);
}
