using System.Diagnostics;
using System.Globalization;

namespace StableAlignment.Core.Training;

/// <summary>
/// The process's peak resident memory, which is where TorchSharp's tensors live (the runtime's GC figures do not see
/// them). On Linux it is the kernel's high-water mark <c>VmHWM</c> from <c>/proc/self/status</c>, which
/// <see cref="ResetPeak"/> restarts by writing 5 to <c>/proc/self/clear_refs</c>; elsewhere the runtime's peak working set.
/// </summary>
internal static class ResidentMemory
{
    private const string StatusFile = "/proc/self/status";

    /// <summary>Restarts the peak at the current resident size; false where the system does not allow it (the peak then covers the whole process).</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>Bytes of the peak resident set since the last <see cref="ResetPeak"/> (or since the process started).</summary>
    public static long PeakBytes()
    {
        if (ReadStatusKilobytes("VmHWM:") is long kb) return kb * 1024;
        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64;
    }

    private static long? ReadStatusKilobytes(string field)
    {
        if (!File.Exists(StatusFile)) return null;
        try
        {
            foreach (var line in File.ReadLines(StatusFile))
            {
                if (line.StartsWith(field, StringComparison.Ordinal)
                    && long.TryParse(line.AsSpan(field.Length).Trim().ToString().Split(' ')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var kb))
                    return kb;
            }
        }
        catch (IOException)
        {
        }
        return null;
    }
}
