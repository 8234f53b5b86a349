using System.Globalization;
using StableAlignment.Core.Training;
using StableAlignment.Core.Interop.Cuda;

namespace StableAlignment.GpuCheck;

/// <summary>The checker on a real GPU: correctness against the float64 oracle, then timings with CUDA events.</summary>
internal static class GpuCheck
{
    public static int Run(int reps, bool check, bool timing)
    {
        if (!CudaKernelDevice.IsAvailable(out var reason))
        {
            Console.Error.WriteLine($"CUDA is not available: {reason}.");
            return 2;
        }
        using var device = CudaKernelDevice.Open();
        CudaDriverApi.Check(CudaDriverApi.cuDriverGetVersion(out var driver), nameof(CudaDriverApi.cuDriverGetVersion));
        Console.WriteLine($"# StableAlignment CUDA kernels on {device.Description}, driver API {driver / 1000}.{driver % 1000 / 10}");
        var failures = 0;
        if (check) failures = Correctness(device);
        if (timing) Timings(device, reps);
        Console.WriteLine(failures == 0 ? "\nRESULT: all checks passed" : $"\nRESULT: {failures} check(s) FAILED");
        return failures == 0 ? 0 : 1;
    }

    private static int Correctness(CudaKernelDevice device)
    {
        Console.WriteLine("\n## Kernels vs float64 reference (outputs poisoned first; errors as multiples of the tolerance, <= 1 passes)\n");
        Console.WriteLine("| case | dtype | N×T×V | loss | NLL | SFT/rank | grad | ranking acc. | result |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        var failures = 0;
        foreach (var c in KernelCheck.Cases(131_072))
        {
            var row = Row(() => KernelCheck.Run(device, c), ref failures,
                o => $"{o.Loss:G3} | {o.Nll:G3} | {o.Terms:G3} | {o.Grad:G3} | {(o.RankingAgrees ? "same" : "DIFFERS")}", "- | - | - | - | -");
            Console.WriteLine($"| {c.Name} | {c.Type} | {c.N}×{c.T}×{c.V} | {row}");
        }

        // The kernels on chunks of rows, as the fused output layer runs them (row forward, then backward in place).
        Console.WriteLine("\n## Kernels on fused-output-layer chunks (rows in the loss, chunk sizes not dividing them, backward in place)\n");
        Console.WriteLine("| case | dtype | N×T×V | chunk rows | token NLL | grad rows | result |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var c in KernelCheck.Cases(131_072))
        {
            foreach (var chunkRows in new[] { 1, 7, 64 })
            {
                var row = Row(() => KernelCheck.RunFusedChunks(device, c, chunkRows), ref failures, o => $"{o.Nll:G3} | {o.Grad:G3}", "- | -");
                Console.WriteLine($"| {c.Name} | {c.Type} | {c.N}×{c.T}×{c.V} | {chunkRows} | {row}");
            }
        }

        // The public host-array path end to end (upload, three launches, checks, download).
        var batch = Core.Tests.Training.Cuda.PreferenceTestBatch.Random(99, 4, 3, 5000, explicitMask: true);
        var options = new ContrastivePreferenceOptions();
        var got = new PreferenceLossRunner(device, options).Compute(batch.ToHost(), computeGradient: true);
        var want = batch.Oracle(options);
        var ok = Math.Abs(got.Loss - want.Loss) <= KernelCheck.Fp32Atol + KernelCheck.Fp32Rtol * Math.Abs(want.Loss)
            && got.GradLogits!.Select((g, i) => Math.Abs(g - want.GradLogits[i]) <= KernelCheck.Fp32Atol + KernelCheck.Fp32Rtol * Math.Abs(want.GradLogits[i])).All(b => b);
        if (!ok) failures++;
        Console.WriteLine($"\nHost-array API end to end: loss {got.Loss:G7} vs reference {want.Loss:G7}: {(ok ? "pass" : "FAIL")}");
        return failures;
    }

    /// <summary>A table row for one check: its figures and pass/FAIL, or the error; counts failures.</summary>
    private static string Row(Func<KernelCheck.Outcome> check, ref int failures, Func<KernelCheck.Outcome, string> figures, string noFigures)
    {
        try
        {
            var o = check();
            if (!o.Passed) failures++;
            return $"{figures(o)} | {(o.Passed ? "pass" : "FAIL")}";
        }
        catch (Exception e) when (e is CudaException or ArgumentException)
        {
            failures++;
            return $"{noFigures} | FAIL: {e.Message}";
        }
    }

    private static void Timings(CudaKernelDevice device, int reps)
    {
        const int n = 8, t = 1024;
        var copy = CopyBandwidth(device, reps);
        Console.WriteLine($"\n## Forward + backward at N·T = {n}×{t} (median of {reps} runs, CUDA events)\n");
        Console.WriteLine($"Device-to-device copy bandwidth (read + write): {copy:F0} GB/s\n");
        Console.WriteLine("| dtype | V | forward ms | backward ms | fwd+bwd ms | GB/s (logits read once + grad written once) | % of copy | actual traffic GB/s (2 reads + 1 write) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        using var csv = new StreamWriter("gpu-check-timings.csv");
        csv.WriteLine("dtype,V,fwd_bwd_ms");
        foreach (var type in new[] { CudaLogitsType.Fp32, CudaLogitsType.Bf16 })
        {
            foreach (var v in new[] { 32_768, 131_072 })
            {
                var (fwd, bwd, total) = TimeOne(device, type, n, t, v, reps);
                var bytes = (double)n * t * v * (type == CudaLogitsType.Fp32 ? 4 : 2);
                var gbs = 2 * bytes / (total * 1e-3) / 1e9;
                var actual = 3 * bytes / (total * 1e-3) / 1e9;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {type} | {v} | {fwd:F3} | {bwd:F3} | {total:F3} | {gbs:F0} | {100 * gbs / copy:F0}% | {actual:F0} |"));
                csv.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(type == CudaLogitsType.Fp32 ? "float32" : "bfloat16")},{v},{total:F4}"));
            }
        }
        FusedChunkTimings(device, reps, copy);
    }

    /// <summary>
    /// The kernels' part of one fused-output-layer chunk: row forward, then backward in place with per-row
    /// coefficients, at the chunk shapes the library uses (160 MiB of float32 logits: 276 rows at V = 151,936;
    /// 1,310 at V = 32,000). Writes gpu-check-fused-timings.csv for gpu-check.sh, which times the chunk's three
    /// matmuls in PyTorch and prints the kernels' share of the chunk.
    /// </summary>
    private static void FusedChunkTimings(CudaKernelDevice device, int reps, double copy)
    {
        Console.WriteLine($"\n## Fused-output-layer chunk: row forward + in-place backward (median of {reps} runs, CUDA events)\n");
        Console.WriteLine("| dtype | chunk rows × V | forward ms | backward ms | total ms | actual traffic GB/s (read, read + write) | % of copy |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        using var csv = new StreamWriter("gpu-check-fused-timings.csv");
        csv.WriteLine("dtype,rows,V,kernels_ms");
        foreach (var type in new[] { CudaLogitsType.Fp32, CudaLogitsType.Bf16 })
        {
            foreach (var (rows, v) in new[] { (276, 151_936), (1310, 32_000) })
            {
                var (fwd, bwd, total) = TimeFusedChunk(device, type, rows, v, reps);
                var bytes = (double)rows * v * (type == CudaLogitsType.Fp32 ? 4 : 2);
                var actual = 3 * bytes / (total * 1e-3) / 1e9;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {type} | {rows} × {v} | {fwd:F3} | {bwd:F3} | {total:F3} | {actual:F0} | {100 * actual / copy:F0}% |"));
                csv.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(type == CudaLogitsType.Fp32 ? "float32" : "bfloat16")},{rows},{v},{total:F4}"));
            }
        }
    }

    private static (double Forward, double Backward, double Total) TimeFusedChunk(CudaKernelDevice device, CudaLogitsType type, int rows, int v, int reps)
    {
        var bytes = (long)rows * v * (type == CudaLogitsType.Fp32 ? 4 : 2);
        using var owned = new DeviceAllocations(device);
        var logits = owned.Allocate(bytes);
        FillRandom(device, logits, bytes, type);
        var rng = new Random(6);
        var targets = owned.Upload<long>(Enumerable.Range(0, rows).Select(_ => (long)rng.Next(v)).ToArray());
        var inputs = new KernelInputs(logits, type, rows, 1, v, 1, targets, 0, 0, 0, new ContrastivePreferenceOptions().IgnoreIndex);
        var lse = owned.Allocate(rows * 4L);
        var tokenNll = owned.Allocate(rows * 4L);
        var badRow = owned.Upload(new int[1]);
        var coefficients = owned.Upload(Enumerable.Range(0, rows).Select(i => 1f / rows).ToArray());
        var ones = owned.Upload(Enumerable.Repeat(1f, rows).ToArray());
        var kernels = new PreferenceKernels(device);
        return TimeTwoParts(device, reps,
            () => kernels.RowForward(inputs, lse, tokenNll, badRow),
            () => kernels.Backward(inputs, lse, coefficients, ones, 0, 0, logits),
            // The backward pass overwrites the logits with their gradient; refill them untimed (the real chunk comes from a matmul).
            beforeEach: () => FillRandom(device, logits, bytes, type));
    }

    /// <summary>
    /// Medians of (first part, second part, both) over <paramref name="reps"/> runs timed with CUDA events, after three
    /// untimed runs and <paramref name="afterWarmup"/>; <paramref name="beforeEach"/> runs untimed before every run.
    /// </summary>
    private static (double First, double Second, double Total) TimeTwoParts(CudaKernelDevice device, int reps, Action first, Action second,
        Action? beforeEach = null, Action? afterWarmup = null)
    {
        for (var i = 0; i < 3; i++)
        {
            beforeEach?.Invoke();
            first();
            second();
        }
        device.Synchronize();
        afterWarmup?.Invoke();
        using var e0 = new CudaEvent();
        using var e1 = new CudaEvent();
        using var e2 = new CudaEvent();
        var one = new List<double>();
        var two = new List<double>();
        var total = new List<double>();
        for (var r = 0; r < reps; r++)
        {
            beforeEach?.Invoke();
            e0.Record();
            first();
            e1.Record();
            second();
            e2.Record();
            total.Add(e2.ElapsedSince(e0));
            one.Add(e1.ElapsedSince(e0));
            two.Add(e2.ElapsedSince(e1));
        }
        return (Median(one), Median(two), Median(total));
    }

    private static (double Forward, double Backward, double Total) TimeOne(CudaKernelDevice device, CudaLogitsType type, int n, int t, int v, int reps)
    {
        var rows = (long)n * t;
        var elementSize = type == CudaLogitsType.Fp32 ? 4 : 2;
        var bytes = rows * v * elementSize;
        using var owned = new DeviceAllocations(device);
        var logits = owned.Allocate(bytes);
        FillRandom(device, logits, bytes, type);
        var grad = owned.Allocate(bytes);
        var rng = new Random(5);
        var targets = owned.Upload<long>(Enumerable.Range(0, (int)rows).Select(_ => (long)rng.Next(v)).ToArray());
        var groups = owned.Upload<long>(Enumerable.Range(0, n).Select(i => (long)(i % 2)).ToArray());
        var ratings = owned.Upload<double>(Enumerable.Range(0, n).Select(i => (double)(1 + i % 7)).ToArray());
        var options = new ContrastivePreferenceOptions();
        var inputs = new KernelInputs(logits, type, n, t, v, 2, targets, 0, groups, ratings, options.IgnoreIndex);
        using var workspace = new LossWorkspace(device, n, t, 2);
        var o = workspace.Buffers;
        var kernels = new PreferenceKernels(device);
        return TimeTwoParts(device, reps,
            () => kernels.Forward(inputs, o, options),
            () => kernels.Backward(inputs, o.Lse, o.Coeff, o.Norm, 0, 0, grad),
            afterWarmup: () => workspace.Read().ThrowIfInvalid(t, v));
    }

    /// <summary>Median device-to-device copy bandwidth over a 2 GiB buffer, counting bytes read plus written.</summary>
    private static double CopyBandwidth(CudaKernelDevice device, int reps)
    {
        const long bytes = 2L << 30;
        var a = device.Allocate(bytes);
        var b = device.Allocate(bytes);
        try
        {
            device.Fill(a, 1, bytes);
            device.CopyWithinDevice(b, a, bytes);
            using var start = new CudaEvent();
            using var stop = new CudaEvent();
            var ms = new List<double>();
            for (var r = 0; r < reps; r++)
            {
                start.Record();
                device.CopyWithinDevice(b, a, bytes);
                stop.Record();
                ms.Add(stop.ElapsedSince(start));
            }
            return 2.0 * bytes / (Median(ms) * 1e-3) / 1e9;
        }
        finally
        {
            device.Free(a);
            device.Free(b);
        }
    }

    /// <summary>Fills device logits with N(0, 3²) values by uploading one random 64 MiB chunk repeatedly.</summary>
    private static void FillRandom(CudaKernelDevice device, nint destination, long bytes, CudaLogitsType type)
    {
        var rng = new Random(3);
        var chunk = new byte[Math.Min(bytes, 64L << 20)];
        if (type == CudaLogitsType.Fp32)
        {
            var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(chunk.AsSpan());
            for (var i = 0; i < f.Length; i++) f[i] = (float)(3 * Gaussian(rng));
        }
        else
        {
            var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(chunk.AsSpan());
            for (var i = 0; i < h.Length; i++) h[i] = KernelCheck.NarrowBf16((float)(3 * Gaussian(rng)));
        }
        for (long offset = 0; offset < bytes; offset += chunk.Length)
        {
            var count = (int)Math.Min(chunk.Length, bytes - offset);
            DeviceCopy.ToDevice<byte>(device, destination + (nint)offset, chunk.AsSpan(0, count));
        }
    }

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static double Median(List<double> values)
    {
        values.Sort();
        return values.Count % 2 == 1 ? values[values.Count / 2] : (values[values.Count / 2 - 1] + values[values.Count / 2]) / 2;
    }
}
