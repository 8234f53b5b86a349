using BenchmarkDotNet.Attributes;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Benchmarks.Training;

/// <summary>
/// Forward plus backward of the contrastive preference loss on CPU at N = 8 responses x T = 256 x V = 32,000, float32,
/// against the naive composition (log_softmax, gather, masked mean, ranking term).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class ContrastiveLossBenchmarks
{
    private const int N = 8, T = 256, V = 32_000;
    private Tensor _logits = null!, _targets = null!, _mask = null!, _groups = null!, _ratings = null!;
    private readonly ContrastivePreferenceLoss _loss = new(new ContrastivePreferenceOptions { Margin = 1, RankingWeight = 0.2 });

    private sealed class Config : BenchmarkDotNet.Configs.ManualConfig
    {
        public Config() => AddColumn(new PeakMemoryColumn());
    }

    [GlobalSetup]
    public void Setup()
    {
        torch.manual_seed(0);
        _logits = torch.randn([N, T, V]).requires_grad_(true);
        _targets = torch.randint(0, V, [N, T]);
        // The first 64 positions of each row are prompt: masked, as in real batches.
        _mask = torch.ones([N, T], ScalarType.Bool);
        _mask[.., ..64] = torch.tensor(false);
        _groups = torch.tensor(new long[] { 0, 0, 0, 1, 1, 1, 2, 2 });
        _ratings = torch.tensor(new float[] { 3, 7, 5, 6, 2, 4, 1, 5 });
        // Measure the peak once per method, after a warm-up call, for the custom column.
        Reference();
        Naive();
        PeakMemory.Measure(nameof(Reference), () => Reference());
        PeakMemory.Measure(nameof(Naive), () => Naive());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _logits, _targets, _mask, _groups, _ratings }) t.Dispose();
    }

    /// <summary>The library's reference path: chunked token NLL with a fused backward.</summary>
    [Benchmark(Baseline = true)]
    public double Reference()
    {
        _logits.grad?.Dispose();
        _logits.grad = null;
        using var scope = torch.NewDisposeScope();
        using var result = _loss.Compute(_logits, _targets, _groups, _ratings, _mask);
        result.Loss.backward();
        return result.Loss.item<float>();
    }

    /// <summary>The textbook composition: log_softmax over the whole batch, gather, masked mean, ranking term.</summary>
    [Benchmark]
    public double Naive()
    {
        _logits.grad?.Dispose();
        _logits.grad = null;
        using var scope = torch.NewDisposeScope();
        var logp = _logits.log_softmax(-1).gather(-1, _targets.unsqueeze(-1)).squeeze(-1);
        var m = _mask.to(ScalarType.Float32);
        var nll = -(logp * m).sum(1) / m.sum(1);
        Tensor total = torch.zeros(1);
        foreach (var (best, others) in new[] { (1, new[] { 0, 2 }), (3, new[] { 4, 5 }), (7, new[] { 6 }) })
        {
            var ratings = _ratings.data<float>();
            var d = torch.stack(others.Select(i => nll[best] - nll[i] + 1.0 * (ratings[best] - ratings[i]) / 7.0).ToArray());
            total = total + nll[best] + 0.2 * d.mean().relu();
        }
        var loss = total / 3;
        loss.backward();
        return loss.item<float>();
    }
}
