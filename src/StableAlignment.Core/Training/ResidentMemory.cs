using System.Diagnostics;
using System.Globalization;

namespace StableAlignment.Core.Training;

/// <summary>
/// The process's peak resident memory, which is where TorchSharp's tensors live (the runtime's GC figures do not see
/// them). On Linux it is the kernel's high-water mark <c>VmHWM</c> from <c>/proc/self/status</c>, which
/// <see cref="StartWindow"/> restarts by writing 5 to <c>/proc/self/clear_refs</c>; elsewhere the runtime's peak working set.
/// </summary>
internal static class ResidentMemory
{
    private const string StatusFile = "/proc/self/status";
    private static readonly Lock Gate = new();
    private static readonly List<PeakWindow> OpenWindows = [];

    /// <summary>
    /// Starts a window whose <see cref="PeakWindow.Bytes"/> is the peak resident set from now on. The kernel keeps one
    /// mark per process and windows overlap (trainers running side by side), so before the mark is restarted for a new
    /// window the peak it reached is folded into every open one: no window ever loses a peak another one reset.
    /// </summary>
    public static PeakWindow StartWindow()
    {
        lock (Gate)
        {
            var reached = MarkBytes();
            foreach (var open in OpenWindows) open.Fold(reached);
            TryRestartMark();
            var window = new PeakWindow();
            OpenWindows.Add(window);
            return window;
        }
    }

    /// <summary>Bytes of the peak resident set since the kernel's mark was last restarted (or since the process started).</summary>
    private static long MarkBytes()
    {
        if (ReadStatusKilobytes("VmHWM:") is long kb) return kb * 1024;
        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64;
    }

    private static void TryRestartMark()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            // Not allowed here: the mark then covers the whole process, an upper bound of every window.
        }
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

    /// <summary>The peak resident set over a span of time; dispose it when the span ends.</summary>
    internal sealed class PeakWindow : IDisposable
    {
        private long _folded;

        /// <summary>Bytes of the peak resident set since the window started; never decreases.</summary>
        public long Bytes
        {
            get
            {
                lock (Gate) return Fold(MarkBytes());
            }
        }

        internal long Fold(long reached) => _folded = Math.Max(_folded, reached);

        public void Dispose()
        {
            lock (Gate) OpenWindows.Remove(this);
        }
    }
}
