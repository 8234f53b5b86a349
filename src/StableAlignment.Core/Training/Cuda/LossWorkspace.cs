
namespace StableAlignment.Core.Training;

/// <summary>
/// One device allocation holding every buffer the forward pass writes for a batch of <c>N</c> responses,
/// <c>T</c> tokens and <c>G</c> groups: O(N·T) floats, nothing of vocabulary size.
/// </summary>
internal sealed class LossWorkspace : IDisposable
{
    private const long Alignment = 256;
    private readonly IKernelDevice device;
    private readonly nint block;
    private readonly long bytes;
    private bool disposed;

    public LossWorkspace(IKernelDevice device, int responses, int tokens, int groups)
    {
        this.device = device;
        Responses = responses;
        Groups = groups;
        var rows = (long)responses * tokens;
        long offset = 0;
        long Take(long bytes)
        {
            var at = offset;
            offset += (bytes + Alignment - 1) / Alignment * Alignment;
            return at;
        }
        long lse = Take(rows * 4), tokenNll = Take(rows * 4), badRow = Take(4), nll = Take(responses * 4L), length = Take(responses * 4L),
            norm = Take(responses * 4L), coeff = Take(responses * 4L), sft = Take(groups * 4L), rank = Take(groups * 4L),
            bestLowest = Take(groups * 4L), loss = Take(4);
        bytes = offset;
        block = device.Allocate(offset);
        Buffers = new ForwardBuffers(block + (nint)lse, block + (nint)tokenNll, block + (nint)badRow, block + (nint)nll, block + (nint)length,
            block + (nint)norm, block + (nint)coeff, block + (nint)sft, block + (nint)rank, block + (nint)bestLowest, block + (nint)loss);
        device.Fill(Buffers.BadRow, 0, 4);
    }

    /// <summary>Fills every output with 0xFF bytes (NaN floats, -1 ints) so that an output a kernel fails to write shows.</summary>
    public void Poison()
    {
        device.Fill(block, 0xff, bytes);
        device.Fill(Buffers.BadRow, 0, 4);
    }

    public int Responses { get; }

    public int Groups { get; }

    public ForwardBuffers Buffers { get; }

    /// <summary>Copies the small outputs to the host (this waits for the kernels).</summary>
    public LossReadout Read()
    {
        var readout = new LossReadout(new float[Responses], new int[Responses], new float[Groups], new float[Groups], new int[Groups]);
        readout.Loss = DeviceCopy.ToHost<float>(device, Buffers.Loss, 1)[0];
        readout.BadRow = DeviceCopy.ToHost<int>(device, Buffers.BadRow, 1)[0];
        DeviceCopy.ToHost(device, Buffers.Nll, readout.Nll.AsSpan());
        DeviceCopy.ToHost(device, Buffers.Length, readout.Length.AsSpan());
        DeviceCopy.ToHost(device, Buffers.Sft, readout.Sft.AsSpan());
        DeviceCopy.ToHost(device, Buffers.Rank, readout.Rank.AsSpan());
        DeviceCopy.ToHost(device, Buffers.BestLowest, readout.BestLowest.AsSpan());
        return readout;
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        device.Free(block);
    }
}

/// <summary>Host copies of the forward pass's small outputs.</summary>
internal sealed class LossReadout(float[] nll, int[] length, float[] sft, float[] rank, int[] bestLowest)
{
    public float Loss { get; set; }

    /// <summary>1 + the row (n·T + t) of an unmasked token whose target is outside the vocabulary, or 0.</summary>
    public int BadRow { get; set; }

    public float[] Nll { get; } = nll;

    public int[] Length { get; } = length;

    public float[] Sft { get; } = sft;

    public float[] Rank { get; } = rank;

    /// <summary>Per group: -1 (not rankable), 0 or 1.</summary>
    public int[] BestLowest { get; } = bestLowest;

    public bool?[] BestHasLowestNll() => Array.ConvertAll(BestLowest, b => b < 0 ? (bool?)null : b == 1);

    /// <summary>Throws <see cref="ArgumentException"/> for a target outside the vocabulary or a response with no token in the loss.</summary>
    public void ThrowIfInvalid(int tokens, int vocabulary)
    {
        if (BadRow != 0)
        {
            var row = BadRow - 1;
            throw new ArgumentException(
                $"targets[{row / tokens}, {row % tokens}] is outside the vocabulary [0, {vocabulary}) on a token that is in the loss.");
        }
        for (var n = 0; n < Length.Length; n++)
        {
            if (Length[n] == 0)
                throw new ArgumentException($"Response {n} has no token in the loss (every target is masked or ignored).");
        }
    }

    public CudaPreferenceLossOutputs ToOutputs(float[]? gradLogits) =>
        new(Loss, Nll, Sft, Rank, BestHasLowestNll(), gradLogits);
}

/// <summary>Host-side checks of the per-response inputs that the kernels take on trust.</summary>
internal static class PreferenceInputChecks
{
    /// <summary>Checks that groups are numbered 0..G-1 with no gaps and ratings lie in the options' range; returns G.</summary>
    public static int GroupCount(ReadOnlySpan<long> groups, ReadOnlySpan<double> ratings, ContrastivePreferenceOptions options)
    {
        if (groups.Length != ratings.Length)
            throw new ArgumentException($"groups has {groups.Length} entries but ratings has {ratings.Length}; both need one per response.", nameof(ratings));
        if (groups.Length == 0) throw new ArgumentException("The batch has no response.", nameof(groups));
        long max = -1;
        for (var n = 0; n < groups.Length; n++)
        {
            if (groups[n] < 0 || groups[n] >= groups.Length)
                throw new ArgumentException($"groups[{n}] = {groups[n]} is outside [0, {groups.Length}).", nameof(groups));
            max = Math.Max(max, groups[n]);
            var r = ratings[n];
            if (!double.IsFinite(r) || r < options.MinRating || r > options.RatingScale)
                throw new ArgumentException($"ratings[{n}] = {r} is outside [MinRating {options.MinRating}, RatingScale {options.RatingScale}].", nameof(ratings));
        }
        var seen = new bool[max + 1];
        foreach (var g in groups) seen[g] = true;
        var gap = Array.IndexOf(seen, false);
        if (gap >= 0) throw new ArgumentException($"Group {gap} has no response; groups must be numbered 0..{max} with no gaps.", nameof(groups));
        return (int)(max + 1);
    }
}

/// <summary>Typed copies between host spans and device memory.</summary>
internal static unsafe class DeviceCopy
{
    public static void ToDevice<T>(IKernelDevice device, nint destination, ReadOnlySpan<T> source) where T : unmanaged
    {
        fixed (T* p = source) device.CopyToDevice(destination, (nint)p, (long)source.Length * sizeof(T));
    }

    public static void ToHost<T>(IKernelDevice device, nint source, Span<T> destination) where T : unmanaged
    {
        fixed (T* p = destination) device.CopyToHost((nint)p, source, (long)destination.Length * sizeof(T));
    }

    public static T[] ToHost<T>(IKernelDevice device, nint source, int count) where T : unmanaged
    {
        var result = new T[count];
        ToHost(device, source, result.AsSpan());
        return result;
    }

    /// <summary>Allocates device memory holding a copy of <paramref name="source"/>.</summary>
    public static nint Upload<T>(IKernelDevice device, ReadOnlySpan<T> source) where T : unmanaged
    {
        var p = device.Allocate((long)source.Length * sizeof(T));
        ToDevice(device, p, source);
        return p;
    }
}

/// <summary>
/// Device memory one call allocates for itself (staged inputs, scratch outputs), freed together on dispose so that
/// an exception part-way through leaks nothing.
/// </summary>
internal sealed class DeviceAllocations(IKernelDevice device) : IDisposable
{
    private readonly List<nint> _owned = [];

    /// <summary>Allocates <paramref name="bytes"/> of device memory owned by this set.</summary>
    public nint Allocate(long bytes)
    {
        var p = device.Allocate(bytes);
        _owned.Add(p);
        return p;
    }

    /// <summary>Allocates device memory owned by this set, holding a copy of <paramref name="source"/>.</summary>
    public nint Upload<T>(ReadOnlySpan<T> source) where T : unmanaged
    {
        var p = DeviceCopy.Upload(device, source);
        _owned.Add(p);
        return p;
    }

    /// <inheritdoc cref="Upload{T}(ReadOnlySpan{T})"/>
    public nint Upload<T>(T[] source) where T : unmanaged => Upload<T>(source.AsSpan());

    public void Dispose()
    {
        foreach (var p in _owned) device.Free(p);
        _owned.Clear();
    }
}
