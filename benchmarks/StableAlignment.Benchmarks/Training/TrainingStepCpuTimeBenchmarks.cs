using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;

namespace StableAlignment.Benchmarks.Training;

/// <summary>
/// The steps of <see cref="TrainingStepBenchmarks"/> (same model and batch), interleaved and timed by CPU time in
/// one invocation: on a machine shared with other builds, wall time swings by tens of percent between iterations.
/// </summary>
// Monitoring: one cold invocation, no separate jitting run (which would double a 500-step run).
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 0, iterationCount: 1)]
public class TrainingStepCpuTimeBenchmarks
{
    private readonly TrainingStepBenchmarks _steps = new() { ResponseTokens = 32 };

    [GlobalSetup]
    public void Setup()
    {
        _steps.Setup();
        _steps.ContrastiveObjectiveStep(); // first-call costs (allocator, lazy init) out of the measurement
    }

    [GlobalCleanup]
    public void Cleanup() => _steps.Cleanup();

    /// <summary>
    /// The three steps interleaved, timed by the process's CPU time rather than wall time, so that load from other
    /// processes on a shared machine does not bias one objective. Prints a "CPU-TIME" line; returns the
    /// contrastive / plain cross-entropy ratio.
    /// </summary>
    [Benchmark]
    public double InterleavedCpuTimeRatio()
    {
        var process = System.Diagnostics.Process.GetCurrentProcess();
        double Cpu(Func<float> step)
        {
            process.Refresh();
            var before = process.TotalProcessorTime;
            step();
            process.Refresh();
            return (process.TotalProcessorTime - before).TotalSeconds;
        }

        double plain = 0, sft = 0, contrastive = 0;
        for (var i = 0; i < 3; i++)
        {
            plain += Cpu(_steps.PlainCrossEntropyStep);
            sft += Cpu(_steps.SftObjectiveStep);
            contrastive += Cpu(_steps.ContrastiveObjectiveStep);
        }
        Console.WriteLine(System.FormattableString.Invariant(
            $"CPU-TIME per step: plain-ce={plain / 3:F3}s sft-objective={sft / 3:F3}s contrastive={contrastive / 3:F3}s contrastive/plain={contrastive / plain:F3} contrastive/sft={contrastive / sft:F3}"));
        return contrastive / plain;
    }

}
