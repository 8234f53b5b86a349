using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;
using TorchSharp;

namespace StableAlignment.Benchmarks.Training;

/// <summary>
/// 500 optimizer steps of the trainer on the default tiny architecture with an 8192-token vocabulary (CPU,
/// contrastive objective, 4 queries x 3 responses of 16 tokens per batch), small enough for 500 steps on two
/// shared cores. Reports tokens/s and the process's resident memory after 50 and after 500 steps: a flat line means
/// the per-step dispose scopes free everything. The figures are printed as "THROUGHPUT ..." lines in the log.
/// </summary>
// Monitoring: one cold invocation, no separate jitting run (which would double a 500-step run).
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 0, iterationCount: 1)]
public class TrainingThroughputBenchmarks
{
    private const int Steps = 500;

    [Benchmark]
    public double FiveHundredSteps()
    {
        torch.set_num_threads(Environment.ProcessorCount);
        var config = new CausalLanguageModelConfig { VocabSize = 8192 };
        using var model = new CausalLanguageModel(config, seed: 1);
        using var trainer = new StableAlignmentTrainer(model, new TrainerOptions { ValidateEverySteps = 0, LearningRate = 1e-3 });
        var source = new SyntheticPreferenceSource(1, batches: Steps, groups: 4, vocab: config.VocabSize, responseTokens: 16);
        var process = Process.GetCurrentProcess();
        long rssAt50 = 0;
        var progress = new StepProgress(step =>
        {
            if (step != 50) return;
            process.Refresh();
            rssAt50 = process.WorkingSet64;
        });
        var report = trainer.Train([new TrainingStage { Name = "throughput", Train = source }], progress);
        process.Refresh();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"THROUGHPUT steps={report.GlobalSteps} tokens/s={report.TokensPerSecond:F0} rss@50={rssAt50 / 1048576.0:F0}MiB rss@500={process.WorkingSet64 / 1048576.0:F0}MiB peak={process.PeakWorkingSet64 / 1048576.0:F0}MiB first-loss={report.Steps[0].Loss:F3} last-loss={report.Steps[^1].Loss:F3}"));
        return report.TokensPerSecond;
    }

    private sealed class StepProgress(Action<int> onStep) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            if (value.Step is { } step) onStep(step.Position.GlobalStep);
        }
    }
}
