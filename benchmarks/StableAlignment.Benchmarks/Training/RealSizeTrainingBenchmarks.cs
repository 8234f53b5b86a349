using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;
using TorchSharp;

namespace StableAlignment.Benchmarks.Training;

/// <summary>
/// Training a Qwen2.5-0.5B-shaped LLaMA model (hidden 896, 24 layers, 14 heads, 2 key-value heads, intermediate
/// 4864, vocabulary 151,936, tied embeddings, random weights: nothing is downloaded) with LoRA r = 16 and
/// activation checkpointing on this machine: batches of 2 queries x 3 responses, 64-token prompts and 128-token
/// responses, one warm-up step and then 5 measured optimizer steps, with the output layer fused into the loss and
/// without it, and the fused run once more with the heap never trimmed. Reports peak resident memory (goal: under 6 GB with the fused loss), seconds per step, tokens/s and
/// model FLOP utilisation against TorchSharp's float32 matmul rate measured in the same process at the step's own
/// matrix shapes (before and after the steps; MFU against their mean). The figures are printed as "REALSIZE ..." lines in the log, one per step as it ends and a summary.
/// </summary>
/// <remarks>
/// A step is minutes of work on two cores, so each method is a single cold invocation (no BenchmarkDotNet warm-up or
/// pilot); its own first optimizer step is the warm-up. Each method runs in its own process, so the two peaks do not
/// mix. Model FLOPs per step are 3x the forward pass's matmul FLOPs (projections, MLP, attention scores and values,
/// the output layer over every position), the usual MFU convention; LoRA's own products (about 2% at r = 16) are
/// left out.
/// </remarks>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 0, iterationCount: 1, invocationCount: 1)]
[Config(typeof(Config))]
public class RealSizeTrainingBenchmarks
{
    // The generated project rebuilds the library: on a loaded 2-core machine that takes more than the default 2 minutes.
    private sealed class Config : BenchmarkDotNet.Configs.ManualConfig
    {
        public Config() => BuildTimeout = TimeSpan.FromMinutes(20);
    }

    private const int Groups = 2, PromptTokens = 64, ResponseTokens = 128, MeasuredSteps = 5;

    /// <summary>Qwen2.5-0.5B's architecture (its config.json), random weights.</summary>
    internal static readonly CausalLanguageModelConfig Qwen05B = new()
    {
        VocabSize = 151_936, HiddenSize = 896, IntermediateSize = 4864, NumLayers = 24, NumHeads = 14, NumKeyValueHeads = 2,
        MaxSequenceLength = 32_768, RopeTheta = 1_000_000, RmsNormEpsilon = 1e-6, TieWordEmbeddings = true, AttentionBias = true,
    };

    /// <summary>The output layer fused into the contrastive loss (the trainer's default).</summary>
    [Benchmark]
    public double FusedLoss() => RunOnce(fused: true);

    /// <summary>The same run on materialised <c>[N, T, V]</c> logits.</summary>
    [Benchmark]
    public double UnfusedLoss() => RunOnce(fused: false);

    /// <summary>The fused run with the heap never trimmed (<see cref="TrainerOptions.HeapTrimThresholdBytes"/> 0), what the trimming saves.</summary>
    [Benchmark]
    public double FusedLossWithoutHeapTrim() => RunOnce(fused: true, trim: false);

    // Minutes per run: should BenchmarkDotNet call a method again in the same process (a jitting call), it gets the
    // figure of the run already made.
    private static readonly Dictionary<(bool, bool), double> Done = [];

    private static double RunOnce(bool fused, bool trim = true)
    {
        if (!Done.TryGetValue((fused, trim), out var seconds)) Done[(fused, trim)] = seconds = Run(fused, trim);
        return seconds;
    }

    private static double Run(bool fused, bool trim)
    {
        torch.set_num_threads(Environment.ProcessorCount);
        var label = (fused ? "fused" : "unfused") + (trim ? "" : "-untrimmed");
        var source = new RandomTokenSource(batches: 1 + MeasuredSteps, Qwen05B.VocabSize);
        long rows = Groups * 3, sequence = PromptTokens + ResponseTokens - 1, tokens = rows * sequence;

        // The yardstick first, while nothing else is resident: the step's matrix shapes, the output layer in the chunks
        // this path forms (the fused loss: its default chunk over the rows in the loss; unfused: every position at once).
        long lossRows = rows * ResponseTokens;
        var chunkRows = fused ? Math.Min(lossRows, ContrastivePreferenceLoss.DefaultFusedChunkBytes / (Qwen05B.VocabSize * sizeof(float))) : tokens;
        var shapes = MatmulRate.StepShapes(Qwen05B, tokens, sequence, chunkRows);
        var rateBefore = MatmulRate.GflopsPerSecond(shapes);
        var modelFlops = 3 * MatmulRate.StepShapes(Qwen05B, tokens, sequence, tokens).Sum(s => s.Flops);
        Print($"REALSIZE {label} matmul-rate-before={rateBefore:F1}GFLOP/s (float32, {Environment.ProcessorCount} threads, output chunks of {chunkRows} rows) model-GFLOP/step={modelFlops / 1e9:F0}");

        var clock = Stopwatch.StartNew();
        using var model = new CausalLanguageModel(Qwen05B, seed: 1);
        var options = new TrainerOptions
        {
            Lora = new LoraOptions { Rank = 16 }, LoraSeed = 1, FusedOutputLoss = fused, ActivationCheckpointing = true,
            ValidateEverySteps = 0, LearningRate = 1e-4, WarmupRatio = 0, HeapTrimThresholdBytes = trim ? new TrainerOptions().HeapTrimThresholdBytes : 0,
        };
        using var trainer = new StableAlignmentTrainer(model, options);
        Print($"REALSIZE {label} model built in {clock.Elapsed.TotalSeconds:F0}s, fused path={trainer.FusedOutputLoss}");

        var steps = new List<TrainingStepMetrics>();
        var report = trainer.Train([new TrainingStage { Name = "realsize", Train = source }], new StepProgress(m =>
        {
            var previous = steps.Count == 0 ? 0 : steps[^1].ElapsedSeconds;
            steps.Add(m);
            Print($"REALSIZE {label} step={m.Position.GlobalStep} seconds={m.ElapsedSeconds - previous:F1} tokens={m.Tokens} loss={m.Loss:F4} peak-rss={m.PeakResidentBytes / 1048576.0:F0}MiB");
        }));

        var measured = steps.Skip(1).ToList();
        var seconds = (steps[^1].ElapsedSeconds - steps[0].ElapsedSeconds) / measured.Count;
        var tokensPerSecond = measured.Sum(m => m.Tokens) / (steps[^1].ElapsedSeconds - steps[0].ElapsedSeconds);
        // Measured again after the steps: on a shared machine the rate moves with the load, so MFU is given against
        // the mean of the two measurements, with both printed.
        var rateAfter = MatmulRate.GflopsPerSecond(shapes);
        var rate = (rateBefore + rateAfter) / 2;
        var mfu = modelFlops / seconds / (rate * 1e9);
        Print($"REALSIZE {label} SUMMARY steps={measured.Count} s/step={seconds:F1} tokens/s={tokensPerSecond:F1} achieved={modelFlops / seconds / 1e9:F1}GFLOP/s matmul-rate-before={rateBefore:F1} after={rateAfter:F1} mfu={mfu:P1} peak-rss={report.PeakResidentBytes / 1048576.0:F0}MiB process-peak={Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:F0}MiB trainable={model.parameters().Where(p => p.requires_grad).Sum(p => p.numel())} first-loss={steps[0].Loss:F4} last-loss={steps[^1].Loss:F4}");
        return seconds;
    }

    private static void Print(FormattableString line) => Console.WriteLine(line.ToString(CultureInfo.InvariantCulture));

    /// <summary>Batches of <see cref="Groups"/> queries x 3 responses rated 7, 4 and 1: random prompts and responses of fixed length.</summary>
    private sealed class RandomTokenSource(int batches, int vocab) : IPreferenceBatchSource
    {
        public int? Count => batches;

        public IEnumerable<PreferenceBatch> Batches(int epoch)
        {
            for (var b = 0; b < batches; b++)
            {
                var rng = new Random(epoch * 1009 + b);
                long[] Tokens(int n) => [.. Enumerable.Range(0, n).Select(_ => (long)rng.Next(4, vocab))];
                var rows = new List<(long[] Tokens, int PromptLength, long Group, float Rating)>();
                for (var g = 0; g < Groups; g++)
                {
                    var prompt = Tokens(PromptTokens);
                    foreach (var rating in new[] { 7f, 4f, 1f }) rows.Add(([.. prompt, .. Tokens(ResponseTokens)], PromptTokens, g, rating));
                }
                yield return SyntheticPreferenceSource.Create(rows, [.. Enumerable.Range(0, Groups).Select(g => $"q{b}-{g}")]);
            }
        }
    }

    private sealed class StepProgress(Action<TrainingStepMetrics> onStep) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            if (value.Step is { } step) onStep(step);
        }
    }
}
