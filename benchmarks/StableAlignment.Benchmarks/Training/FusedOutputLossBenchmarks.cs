using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Benchmarks.Training;

/// <summary>
/// The output layer and the contrastive loss at Qwen2.5-0.5B's width and vocabulary: H = 896, V = 151,936,
/// N·T = 4,096 rows (16 responses in 8 groups of 2, T = 256, the first 64 positions masked as prompt), float32,
/// forward plus backward with gradients to the hidden states and (unless frozen, as under LoRA) the weight.
/// Fused (<see cref="ContrastivePreferenceLoss.ComputeFromHidden"/>) against unfused (logits = linear(H, W), then
/// Compute writing its gradient over them) and naive (log_softmax over the materialised logits).
/// Goals: fused time at most 1.0x unfused; fused extra memory at most 1/10 of unfused.
/// </summary>
/// <remarks>
/// <c>FusedRecompute</c> is the alternative gradient schedule (every chunk recomputed in the backward pass, the
/// coefficient scaling the [chunk, V] block), kept to choose between them by measurement. One call takes tens of seconds on two
/// cores, so each method runs a warm-up call, the peak-memory call (fresh loss object: workspaces count) and three
/// measured calls.
/// </remarks>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 0, iterationCount: 3)]
[Config(typeof(Config))]
public class FusedOutputLossBenchmarks
{
    private const int N = 16, T = 256, H = 896, V = 151_936, Prompt = 64;
    private static readonly ContrastivePreferenceOptions Options = new();
    private Tensor _hidden = null!, _weight = null!, _targets = null!, _mask = null!, _groups = null!, _ratings = null!;
    private ContrastivePreferenceLoss _fused = null!, _recompute = null!, _unfused = null!;

    /// <summary>Whether the output weight gets a gradient (false: frozen, as under LoRA).</summary>
    [Params(true, false)]
    public bool TrainableWeight { get; set; }

    private sealed class Config : BenchmarkDotNet.Configs.ManualConfig
    {
        public Config() => AddColumn(new PeakMemoryColumn());
    }

    [GlobalSetup(Target = nameof(Fused))] public void SetupFused() => Setup(Fused);
    [GlobalSetup(Target = nameof(FusedRecompute))] public void SetupFusedRecompute() => Setup(FusedRecompute);
    [GlobalSetup(Target = nameof(Unfused))] public void SetupUnfused() => Setup(Unfused);
    [GlobalSetup(Target = nameof(Naive))] public void SetupNaive() => Setup(Naive);

    private void Setup(Func<double> run)
    {
        torch.set_num_threads(Environment.ProcessorCount);
        torch.manual_seed(0);
        _hidden = torch.randn([N, T, H]).requires_grad_(true);
        _weight = (torch.randn([V, H]) * 0.02f).requires_grad_(TrainableWeight);
        _targets = torch.randint(0, V, [N, T]);
        _mask = torch.ones([N, T], ScalarType.Bool);
        _mask[.., ..Prompt] = torch.tensor(false);
        _groups = torch.tensor(Enumerable.Range(0, N).Select(i => (long)(i / 2)).ToArray());
        _ratings = torch.tensor(Enumerable.Range(0, N).Select(i => i % 2 == 0 ? 6.0 : 3.0).ToArray());
        FreshLosses();
        run();
        FreshLosses();
        // The key PeakMemoryColumn looks up: method name and parameters as "[TrainableWeight-False]".
        PeakMemory.Measure(run.Method.Name + $"[TrainableWeight-{TrainableWeight}]", () => run());
    }

    private void FreshLosses()
    {
        _fused?.Dispose();
        _recompute?.Dispose();
        _unfused?.Dispose();
        _fused = new ContrastivePreferenceLoss(Options);
        _recompute = new ContrastivePreferenceLoss(Options) { FusedSchedule = FusedGradientSchedule.RecomputeInBackward };
        _unfused = new ContrastivePreferenceLoss(Options) { OverwriteLogitsWithGradient = true };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _hidden, _weight, _targets, _mask, _groups, _ratings }) t.Dispose();
        _fused.Dispose();
        _recompute.Dispose();
        _unfused.Dispose();
    }

    /// <summary>ComputeFromHidden with the library's schedule.</summary>
    [Benchmark]
    public double Fused() => Step(() => _fused.ComputeFromHidden(_hidden, _weight, _targets, _groups, _ratings, _mask));

    /// <summary>ComputeFromHidden recomputing every chunk in the backward pass.</summary>
    [Benchmark]
    public double FusedRecompute() => Step(() => _recompute.ComputeFromHidden(_hidden, _weight, _targets, _groups, _ratings, _mask));

    /// <summary>The logits materialised by the output layer, then Compute with its gradient written over them.</summary>
    [Benchmark(Baseline = true)]
    public double Unfused() => Step(() => _unfused.Compute(nn.functional.linear(_hidden, _weight), _targets, _groups, _ratings, _mask));

    /// <summary>The textbook composition on materialised logits: log_softmax, gather, masked mean, ranking term.</summary>
    [Benchmark]
    public double Naive()
    {
        ClearGradients();
        using var scope = torch.NewDisposeScope();
        var logp = nn.functional.linear(_hidden, _weight).log_softmax(-1).gather(-1, _targets.unsqueeze(-1)).squeeze(-1);
        var m = _mask.to(ScalarType.Float32);
        var nll = -(logp * m).sum(1) / m.sum(1);
        var best = nll.view(N / 2, 2)[.., 0];
        var other = nll.view(N / 2, 2)[.., 1];
        var loss = (best + 0.2 * (best - other + 3.0 / 7.0).relu()).mean();
        loss.backward();
        return loss.item<float>();
    }

    private void ClearGradients()
    {
        foreach (var t in new[] { _hidden, _weight })
        {
            t.grad?.Dispose();
            t.grad = null;
        }
    }

    private double Step(Func<PreferenceLossResult> loss)
    {
        ClearGradients();
        using var scope = torch.NewDisposeScope();
        using var result = loss();
        result.Loss.backward();
        return result.Loss.item<float>();
    }
}
