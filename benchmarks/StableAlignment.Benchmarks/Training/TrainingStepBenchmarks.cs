using BenchmarkDotNet.Attributes;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Benchmarks.Training;

/// <summary>
/// One optimizer step (forward, loss, backward, AdamW) of the default tiny model on the CPU, on the same batch of
/// 8 queries x 3 responses, under three objectives: plain token cross-entropy over every response token (what a
/// standard SFT trainer would do with these tokens), the SFT-only objective and the full contrastive objective.
/// Goal: contrastive at most 1.15x plain cross-entropy, because all responses share one forward pass.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 6)]
[MemoryDiagnoser]
public class TrainingStepBenchmarks
{
    private CausalLanguageModel _model = null!;
    private optim.Optimizer _optimizer = null!;
    private PreferenceBatch _batch = null!;
    private ContrastivePreferenceLoss _contrastive = null!;
    private ContrastivePreferenceLoss _sft = null!;

    /// <summary>Tokens per response (prompt is 3 tokens more).</summary>
    [Params(32)]
    public int ResponseTokens { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(Environment.ProcessorCount);
        var config = new CausalLanguageModelConfig();
        _model = new CausalLanguageModel(config, seed: 1);
        _optimizer = new AdamW(_model.parameters(), 1e-4, 0.9, 0.99, 1e-8, 0);
        _batch = new SyntheticPreferenceSource(1, batches: 1, groups: 8, vocab: config.VocabSize, responseTokens: ResponseTokens).Batches(0).Single();
        _contrastive = new ContrastivePreferenceLoss();
        _sft = new ContrastivePreferenceLoss(new ContrastivePreferenceOptions { SftOnly = true });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _batch.Dispose();
        _optimizer.Dispose();
        _model.Dispose();
    }

    [Benchmark(Baseline = true)]
    public float PlainCrossEntropyStep() => Step(logits =>
        nn.functional.cross_entropy(logits.view(-1, logits.shape[2]), _batch.Targets.view(-1), ignore_index: -100));

    [Benchmark]
    public float SftObjectiveStep() => Step(logits =>
    {
        using var r = _sft.Compute(logits, _batch.Targets, _batch.Groups, _batch.Ratings, _batch.LossMask);
        return r.Loss.alias();
    });

    [Benchmark]
    public float ContrastiveObjectiveStep() => Step(logits =>
    {
        using var r = _contrastive.Compute(logits, _batch.Targets, _batch.Groups, _batch.Ratings, _batch.LossMask);
        return r.Loss.alias();
    });

    private float Step(Func<Tensor, Tensor> loss)
    {
        using var scope = NewDisposeScope();
        _optimizer.zero_grad();
        var value = loss(_model.forward(_batch.InputIds));
        value.backward();
        _optimizer.step();
        return value.item<float>();
    }
}
