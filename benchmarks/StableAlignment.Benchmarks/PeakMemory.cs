using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace StableAlignment.Benchmarks;

/// <summary>
/// Peak native memory of one call, measured in the benchmark process through Linux's VmHWM (reset by writing 5 to
/// /proc/self/clear_refs). BenchmarkDotNet's MemoryDiagnoser only sees managed allocations, while TorchSharp's tensors
/// live in native memory; this records the peak resident growth during one call for a column to show.
/// </summary>
public static class PeakMemory
{
    private static string FileFor(string key) => Path.Combine(Path.GetTempPath(), "stable-alignment-peak", key + ".txt");

    /// <summary>Runs <paramref name="action"/> once and stores its peak resident growth in MiB under <paramref name="key"/>.</summary>
    public static double Measure(string key, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        GC.Collect();
        double before = ReadStatus("VmRSS:");
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (IOException)
        {
            return double.NaN; // not Linux, or not allowed: the column shows "?"
        }
        action();
        double peak = ReadStatus("VmHWM:");
        double mib = (peak - before) / 1024.0;
        Directory.CreateDirectory(Path.GetDirectoryName(FileFor(key))!);
        File.WriteAllText(FileFor(key), mib.ToString(CultureInfo.InvariantCulture));
        return mib;
    }

    internal static string? Read(string key) =>
        File.Exists(FileFor(key)) ? double.Parse(File.ReadAllText(FileFor(key)), CultureInfo.InvariantCulture).ToString("F1", CultureInfo.InvariantCulture) : null;

    private static double ReadStatus(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
                return double.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        return double.NaN;
    }
}

/// <summary>A column showing the <see cref="PeakMemory"/> figure recorded for each benchmark method.</summary>
public sealed class PeakMemoryColumn : IColumn
{
    /// <inheritdoc />
    public string Id => nameof(PeakMemoryColumn);

    /// <inheritdoc />
    public string ColumnName => "Peak native growth (MiB)";

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => 0;

    /// <inheritdoc />
    public bool IsNumeric => true;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Size;

    /// <inheritdoc />
    public string Legend => "Peak growth of resident memory during one call after a warm-up call (VmHWM), so the logits and the previous gradient are already resident: what it shows is the extra memory";

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        PeakMemory.Read(benchmarkCase.Descriptor.WorkloadMethod.Name + benchmarkCase.Parameters.DisplayInfo.Replace(' ', '_').Replace('=', '-')) ?? "?";

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => true;

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
