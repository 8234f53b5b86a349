using BenchmarkDotNet.Attributes;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Benchmarks.Training;

/// <summary>
/// Forward plus backward of the contrastive preference loss on CPU at N = 8 responses x T = 256 x V = 32,000, float32
/// (the first 64 positions of each response masked as prompt), against the loss as it was before the fused-output-layer
/// work (<see cref="PreviousContrastivePreferenceLoss"/>, the baseline) and the naive composition. Goals: Compute at
/// most 0.35x the previous time; the fused path (from hidden states, H = 128) no slower than Compute on logits
/// materialised by the same output layer.
/// </summary>
/// <remarks>
/// "...OverModelLogits" methods take the logits as the non-leaf output of an autograd node (<see cref="ModelOutputLogits"/>,
/// a resident buffer refilled by copy_, included in the time), as in training; the others take a leaf tensor, which
/// always needs a fresh gradient. The peak column is measured on a fresh loss object, so persistent workspaces count.
/// </remarks>
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 12)]
[MemoryDiagnoser]
[Config(typeof(Config))]
public class ContrastiveLossBenchmarks
{
    private const int N = 8, T = 256, V = 32_000, H = 128;
    private static readonly ContrastivePreferenceOptions Options = new() { Margin = 1, RankingWeight = 0.2 };
    private Tensor _logits = null!, _targets = null!, _mask = null!, _groups = null!, _ratings = null!;
    private Tensor _anchor = null!, _hidden = null!, _weight = null!;
    private ModelOutputLogits.Buffers _modelLogits = null!;
    private readonly PreviousContrastivePreferenceLoss _previous = new(Options);
    private ContrastivePreferenceLoss _loss = new(Options), _overwriting = new(Options) { OverwriteLogitsWithGradient = true };

    private sealed class Config : BenchmarkDotNet.Configs.ManualConfig
    {
        public Config() => AddColumn(new PeakMemoryColumn());
    }

    // One setup per method: BenchmarkDotNet runs each method in its own process, and each measures only its own peak.
    [GlobalSetup(Target = nameof(Previous))] public void SetupPrevious() => Setup(Previous);
    [GlobalSetup(Target = nameof(Reference))] public void SetupReference() => Setup(Reference);
    [GlobalSetup(Target = nameof(PreviousOverModelLogits))] public void SetupPreviousOverModelLogits() => Setup(PreviousOverModelLogits);
    [GlobalSetup(Target = nameof(ReferenceOverModelLogits))] public void SetupReferenceOverModelLogits() => Setup(ReferenceOverModelLogits);
    [GlobalSetup(Target = nameof(FusedFromHidden))] public void SetupFusedFromHidden() => Setup(FusedFromHidden);
    [GlobalSetup(Target = nameof(UnfusedFromHidden))] public void SetupUnfusedFromHidden() => Setup(UnfusedFromHidden);
    [GlobalSetup(Target = nameof(Naive))] public void SetupNaive() => Setup(Naive);

    private void Setup(Func<double> run)
    {
        torch.manual_seed(0);
        _logits = torch.randn([N, T, V]).requires_grad_(true);
        _targets = torch.randint(0, V, [N, T]);
        // The first 64 positions of each row are prompt: masked, as in real batches.
        _mask = torch.ones([N, T], ScalarType.Bool);
        _mask[.., ..64] = torch.tensor(false);
        _groups = torch.tensor(new long[] { 0, 0, 0, 1, 1, 1, 2, 2 });
        _ratings = torch.tensor(new float[] { 3, 7, 5, 6, 2, 4, 1, 5 });
        _anchor = torch.zeros(1).requires_grad_(true);
        _modelLogits = new ModelOutputLogits.Buffers(_logits.detach().clone(), torch.empty([N, T, V]));
        _hidden = torch.randn([N, T, H]).requires_grad_(true);
        _weight = (torch.randn([V, H]) * (1 / Math.Sqrt(H))).requires_grad_(true);

        // The peak of one call after a warm-up call, for the custom column, on a fresh loss object (workspaces count).
        run();
        FreshLosses();
        PeakMemory.Measure(run.Method.Name, () => run());
    }

    private void FreshLosses()
    {
        _loss.Dispose();
        _overwriting.Dispose();
        _loss = new ContrastivePreferenceLoss(Options);
        _overwriting = new ContrastivePreferenceLoss(Options) { OverwriteLogitsWithGradient = true };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _logits, _targets, _mask, _groups, _ratings, _anchor, _hidden, _weight, _modelLogits.Pristine, _modelLogits.Output }) t.Dispose();
        _loss.Dispose();
        _overwriting.Dispose();
    }

    /// <summary>The loss before this work (chunked TorchSharp operations, fresh gradient), on leaf logits.</summary>
    [Benchmark(Baseline = true)]
    public double Previous() => Step(_logits, logits => _previous.Compute(logits, _targets, _groups, _ratings, _mask));

    /// <summary>The library's Compute (host row kernels), on leaf logits: a fresh gradient tensor.</summary>
    [Benchmark]
    public double Reference() => Step(_logits, logits => _loss.Compute(logits, _targets, _groups, _ratings, _mask));

    /// <summary>The previous loss on the non-leaf logits of a stand-in output layer (it cannot reuse them).</summary>
    [Benchmark]
    public double PreviousOverModelLogits() => Step(null, _ => _previous.Compute(ModelOutputLogits.Produce(_anchor, _modelLogits), _targets, _groups, _ratings, _mask));

    /// <summary>Compute with OverwriteLogitsWithGradient on the non-leaf logits of a stand-in output layer: no fresh memory.</summary>
    [Benchmark]
    public double ReferenceOverModelLogits() => Step(null, _ => _overwriting.Compute(ModelOutputLogits.Produce(_anchor, _modelLogits), _targets, _groups, _ratings, _mask));

    /// <summary>ComputeFromHidden: the output layer (H = 128) fused into the loss, gradients to hidden and weight.</summary>
    [Benchmark]
    public double FusedFromHidden() => Step(null, _ => _loss.ComputeFromHidden(_hidden, _weight, _targets, _groups, _ratings, _mask));

    /// <summary>The same output layer materialising the logits (linear), then Compute writing its gradient over them.</summary>
    [Benchmark]
    public double UnfusedFromHidden() => Step(null, _ => _overwriting.Compute(nn.functional.linear(_hidden, _weight), _targets, _groups, _ratings, _mask));

    /// <summary>The textbook composition: log_softmax over the whole batch, gather, masked mean, ranking term.</summary>
    [Benchmark]
    public double Naive()
    {
        ClearGradients();
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

    private void ClearGradients()
    {
        foreach (var t in new[] { _logits, _hidden, _weight })
        {
            t.grad?.Dispose();
            t.grad = null;
        }
    }

    private double Step(Tensor? logits, Func<Tensor, PreferenceLossResult> loss)
    {
        ClearGradients();
        using var scope = torch.NewDisposeScope();
        using var result = loss(logits!);
        result.Loss.backward();
        return result.Loss.item<float>();
    }
}
