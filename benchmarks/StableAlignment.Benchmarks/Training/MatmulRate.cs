using System.Diagnostics;
using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Benchmarks.Training;

/// <summary>
/// The float32 matmul rate TorchSharp reaches in this process at given shapes, the yardstick for model FLOP
/// utilisation (MFU): a training step's model FLOPs divided by its time and by this rate. Measured in the same
/// process as the step it judges, so that the machine's load and thread settings are the same.
/// </summary>
internal static class MatmulRate
{
    /// <summary>One product <c>[M, K] x [K, N]</c>, <paramref name="Count"/> times per step.</summary>
    internal readonly record struct Shape(long M, long K, long N, int Count = 1)
    {
        public double Flops => 2.0 * M * K * N * Count;
    }

    /// <summary>
    /// Times each shape (into a resident output, after a warm-up product, median of <paramref name="repeats"/>) and
    /// returns the FLOP-weighted rate in GFLOP/s: the total FLOPs over the total time of one pass over the shapes.
    /// </summary>
    public static double GflopsPerSecond(IReadOnlyList<Shape> shapes, int repeats = 3)
    {
        double flops = 0, seconds = 0;
        foreach (var s in shapes)
        {
            using var scope = NewDisposeScope();
            var a = randn(s.M, s.K);
            var b = randn(s.K, s.N);
            var c = zeros(s.M, s.N); // touched once, so the timing sees no page faults
            c.addmm_(a, b, 0, 1);
            var times = new List<double>();
            for (var r = 0; r < repeats; r++)
            {
                var clock = Stopwatch.StartNew();
                c.addmm_(a, b, 0, 1);
                times.Add(clock.Elapsed.TotalSeconds);
            }
            times.Sort();
            flops += s.Flops;
            seconds += times[times.Count / 2] * s.Count;
        }
        return flops / seconds / 1e9;
    }

    /// <summary>
    /// The forward-pass matmuls of <paramref name="config"/> on <paramref name="tokens"/> rows (projections, MLP,
    /// attention scores and values at <paramref name="sequence"/> tokens per sequence) and the output layer in fused
    /// chunks of <paramref name="chunkRows"/>; the backward pass runs the same products transposed, which cost the same.
    /// </summary>
    public static IReadOnlyList<Shape> StepShapes(CausalLanguageModelConfig config, long tokens, long sequence, long chunkRows)
    {
        long c = config.HiddenSize, d = config.HeadDim, kv = config.NumKeyValueHeads * d, f = config.IntermediateSize, l = config.NumLayers;
        var sequences = tokens / sequence;
        return
        [
            new(tokens, c, c, (int)(2 * l)),                       // q and o projections
            new(tokens, c, kv, (int)(2 * l)),                      // k and v projections
            new(tokens, c, f, (int)(2 * l)),                       // gate and up
            new(tokens, f, c, (int)l),                             // down
            new(sequence, d, sequence, (int)(2 * l * config.NumHeads * sequences)), // q kᵀ and p v per head
            new(chunkRows, c, config.VocabSize, (int)Math.Ceiling((double)tokens / chunkRows)), // output layer, fused chunks
        ];
    }
}

/// <summary>
/// Prints TorchSharp's float32 matmul rate at the matrix shapes of a Qwen2.5-0.5B-shaped training step (2 queries x 3
/// responses of 64 + 128 tokens, fused output chunks of 276 rows), the yardstick for that step's MFU. The figure is
/// printed as a "MATMULRATE ..." line in the log.
/// </summary>
[BenchmarkDotNet.Attributes.SimpleJob(BenchmarkDotNet.Engines.RunStrategy.Monitoring, launchCount: 1, warmupCount: 0, iterationCount: 1)]
public class MatmulRateBenchmarks
{
    [BenchmarkDotNet.Attributes.Benchmark]
    public double Qwen05BStepShapes()
    {
        torch.set_num_threads(Environment.ProcessorCount);
        var rate = MatmulRate.GflopsPerSecond(MatmulRate.StepShapes(RealSizeTrainingBenchmarks.Qwen05B, tokens: 6 * 191, sequence: 191, chunkRows: 276), repeats: 3);
        Console.WriteLine(FormattableString.Invariant($"MATMULRATE float32 {rate:F1} GFLOP/s at the Qwen2.5-0.5B step shapes ({Environment.ProcessorCount} threads)"));
        return rate;
    }
}
