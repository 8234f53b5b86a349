using FsCheck;
using FsCheck.Fluent;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

/// <summary>
/// <see cref="ContrastivePreferenceLoss.ComputeFromHidden"/> against the float64 oracle with logits = H·Wᵀ formed in the
/// oracle: loss, per-response and per-group terms, grad_hidden and grad_W, over random shapes, chunk sizes that do and
/// do not divide the rows in the loss (so groups straddle chunk borders), both gradient schedules; and against <see cref="ContrastivePreferenceLoss.Compute"/> on materialised logits.
/// </summary>
public sealed class FusedOutputLossTests
{
    private static Gen<ContrastivePreferenceOptions> OptionsGen => ContrastivePreferenceLossTests.OptionsGen;

    /// <summary>What a fused run gives, as float64 host arrays.</summary>
    internal sealed record FusedRun(double Loss, double[] Nll, double[] Sft, double[] Rank, bool?[] BestHasLowestNll, double[] GradHidden, double[] GradWeight);

    /// <summary>Runs <paramref name="loss"/>'s fused path on a case and back-propagates <paramref name="objective"/> (default: the loss).</summary>
    internal static FusedRun RunFused(HiddenLossCase c, ContrastivePreferenceLoss loss, ScalarType dtype, Func<PreferenceLossResult, Tensor>? objective = null)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = torch.tensor(c.Hidden, [c.N, c.T, c.H]).to(dtype).detach().requires_grad_(true);
        var weight = torch.tensor(c.Weight, [c.V, c.H]).to(dtype).detach().requires_grad_(true);
        using var result = loss.ComputeFromHidden(hidden, weight, torch.tensor(c.Targets, [c.N, c.T]), torch.tensor(c.Groups), torch.tensor(c.Ratings),
            torch.tensor(c.Mask, [c.N, c.T]));
        (objective?.Invoke(result) ?? result.Loss).backward();
        return new FusedRun(result.Loss.to(ScalarType.Float64).item<double>(), D(result.ResponseNll), D(result.SftTerms), D(result.RankingTerms),
            [.. result.BestHasLowestNll], D(hidden.grad!), D(weight.grad!));
    }

    internal static double[] D(Tensor t) => t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();

    private static bool Close(double[] actual, double[] expected, double rtol, double atol) =>
        actual.Length == expected.Length && actual.Zip(expected).All(p => Math.Abs(p.First - p.Second) <= atol + rtol * Math.Abs(p.Second));

    private static bool Close(double actual, double expected, double rtol, double atol) => Math.Abs(actual - expected) <= atol + rtol * Math.Abs(expected);

    internal static bool MatchesOracle(FusedRun got, HiddenOracleResult want, double rtol, double atol) =>
        Close(got.Loss, want.Terms.Loss, rtol, atol)
        && Close(got.Nll, want.Terms.Nll, rtol, atol)
        && Close(got.Sft, want.Terms.Sft, rtol, atol)
        && Close(got.Rank, want.Terms.Rank, rtol, atol)
        && Close(got.GradHidden, want.GradHidden, rtol, atol)
        && Close(got.GradWeight, want.GradWeight, rtol, atol)
        && got.BestHasLowestNll.SequenceEqual(want.Terms.BestHasLowestNll);

    private static readonly Gen<(int ChunkRows, FusedGradientSchedule Schedule)> ChunkingGen =
        from chunkRows in Gen.Choose(1, 12)
        from schedule in Gen.Elements(FusedGradientSchedule.FoldedInForward, FusedGradientSchedule.RecomputeInBackward)
        select (chunkRows, schedule);

    [FsCheck.Xunit.Property(MaxTest = 120)]
    public Property Float64_loss_and_both_gradients_match_the_oracle_for_any_chunking() =>
        Prop.ForAll(LossCases.AnyHidden().ToArbitrary(), OptionsGen.ToArbitrary(), ChunkingGen.ToArbitrary(), (c, o, chunking) =>
        {
            using var loss = new ContrastivePreferenceLoss(o) { FusedChunkRows = chunking.ChunkRows, FusedSchedule = chunking.Schedule };
            var got = RunFused(c, loss, ScalarType.Float64);
            return MatchesOracle(got, PreferenceLossOracle.Compute(c, o), 1e-9, 1e-12).Label($"{c} {o} {chunking}");
        });

    [FsCheck.Xunit.Property(MaxTest = 40)]
    public Property Float32_matches_the_oracle_within_float_tolerance() =>
        Prop.ForAll(LossCases.AnyHidden(maxH: 24, maxV: 300).ToArbitrary(), OptionsGen.ToArbitrary(), ChunkingGen.ToArbitrary(), (c, o, chunking) =>
        {
            using var loss = new ContrastivePreferenceLoss(o) { FusedChunkRows = chunking.ChunkRows, FusedSchedule = chunking.Schedule };
            return MatchesOracle(RunFused(c, loss, ScalarType.Float32), PreferenceLossOracle.Compute(c, o), 5e-4, 1e-5).Label($"{c} {o} {chunking}");
        });

    [FsCheck.Xunit.Property(MaxTest = 25)]
    public Property TorchSharp_operation_row_work_matches_the_oracle() =>
        Prop.ForAll(LossCases.AnyHidden().ToArbitrary(), OptionsGen.ToArbitrary(), Gen.Choose(1, 7).ToArbitrary(), (c, o, chunkRows) =>
        {
            using var loss = new ContrastivePreferenceLoss(o) { FusedChunkRows = chunkRows, RowBackend = LogitRowBackend.TorchOps };
            return MatchesOracle(RunFused(c, loss, ScalarType.Float64), PreferenceLossOracle.Compute(c, o), 1e-9, 1e-12).Label($"{c} {o}");
        });

    [Fact]
    public void Bfloat16_is_accumulated_in_float32()
    {
        var c = LossCases.BuildHidden(n: 6, t: 4, h: 16, v: 257, groupCount: 2, integerRatings: true, seed: 5);
        // The oracle sees H and W exactly as bfloat16 stores them; what remains is the bfloat16 logits and gradients.
        static double[] Round(double[] x) => torch.tensor(x).to(ScalarType.BFloat16).to(ScalarType.Float64).data<double>().ToArray();
        var rounded = c with { Hidden = Round(c.Hidden), Weight = Round(c.Weight) };
        using var loss = new ContrastivePreferenceLoss { FusedChunkRows = 5 };
        var got = RunFused(c, loss, ScalarType.BFloat16);
        var want = PreferenceLossOracle.Compute(rounded, new ContrastivePreferenceOptions());
        Assert.True(Close(got.Loss, want.Terms.Loss, 1e-2, 1e-3), $"{got.Loss} vs {want.Terms.Loss}");
        Assert.True(Close(got.GradHidden, want.GradHidden, 5e-2, 2e-3));
        Assert.True(Close(got.GradWeight, want.GradWeight, 5e-2, 2e-3));
    }

    [Fact]
    public void Fused_equals_unfused_compute_on_materialised_logits_in_float32()
    {
        var c = LossCases.BuildHidden(n: 9, t: 7, h: 32, v: 1000, groupCount: 3, integerRatings: true, seed: 21);
        var o = new ContrastivePreferenceOptions { Reduction = RankingReduction.MeanOfHinges, Margin = 4 };
        using var fusedLoss = new ContrastivePreferenceLoss(o) { FusedChunkRows = 10 };
        var fused = RunFused(c, fusedLoss, ScalarType.Float32);

        using var scope = torch.NewDisposeScope();
        var hidden = torch.tensor(c.Hidden, [c.N, c.T, c.H]).to(ScalarType.Float32).requires_grad_(true);
        var weight = torch.tensor(c.Weight, [c.V, c.H]).to(ScalarType.Float32).requires_grad_(true);
        using var unfused = new ContrastivePreferenceLoss(o) { OverwriteLogitsWithGradient = true }.Compute(
            nn.functional.linear(hidden, weight), torch.tensor(c.Targets, [c.N, c.T]), torch.tensor(c.Groups), torch.tensor(c.Ratings), torch.tensor(c.Mask, [c.N, c.T]));
        unfused.Loss.backward();

        Assert.True(Close(fused.Loss, unfused.Loss.item<float>(), 1e-5, 1e-6), $"{fused.Loss} vs {unfused.Loss.item<float>()}");
        Assert.True(Close(fused.Nll, D(unfused.ResponseNll), 1e-5, 1e-6));
        Assert.True(Close(fused.GradHidden, D(hidden.grad!), 1e-4, 1e-7));
        Assert.True(Close(fused.GradWeight, D(weight.grad!), 1e-4, 1e-7));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_gradient_that_also_flows_through_response_nll_or_is_scaled_is_exact(bool gradientInForward)
    {
        var schedule = gradientInForward ? FusedGradientSchedule.FoldedInForward : FusedGradientSchedule.RecomputeInBackward;
        var c = LossCases.BuildHidden(n: 5, t: 4, h: 3, v: 11, groupCount: 2, integerRatings: true, seed: 8);
        var o = new ContrastivePreferenceOptions();
        using var loss = new ContrastivePreferenceLoss(o) { FusedChunkRows = 3, FusedSchedule = schedule };
        var want = PreferenceLossOracle.Compute(c, o);

        // Loss / 4: a multiple of the gradient the forward pass prepared, so it only rescales.
        var scaled = RunFused(c, loss, ScalarType.Float64, r => r.Loss / 4);
        Assert.True(Close(scaled.GradHidden, want.GradHidden.Select(g => g / 4).ToArray(), 1e-9, 1e-12));
        Assert.True(Close(scaled.GradWeight, want.GradWeight.Select(g => g / 4).ToArray(), 1e-9, 1e-12));

        // Loss + 0.3 * NLL_0: not a multiple of it, so the chunks are recomputed with the gradient autograd brings.
        var both = RunFused(c, loss, ScalarType.Float64, r => r.Loss + 0.3 * r.ResponseNll[0]);
        var mixed = RunMaterialisedFloat64(c, o, r => r.Loss + 0.3 * r.ResponseNll[0]);
        Assert.True(Close(both.GradHidden, mixed.GradHidden, 1e-9, 1e-12));
        Assert.True(Close(both.GradWeight, mixed.GradWeight, 1e-9, 1e-12));
    }

    /// <summary>Compute on logits = linear(H, W) in float64 (itself checked against the oracle), for objectives the oracle does not cover.</summary>
    private static FusedRun RunMaterialisedFloat64(HiddenLossCase c, ContrastivePreferenceOptions o, Func<PreferenceLossResult, Tensor> objective)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = torch.tensor(c.Hidden, [c.N, c.T, c.H]).requires_grad_(true);
        var weight = torch.tensor(c.Weight, [c.V, c.H]).requires_grad_(true);
        using var result = new ContrastivePreferenceLoss(o).Compute(nn.functional.linear(hidden, weight), torch.tensor(c.Targets, [c.N, c.T]),
            torch.tensor(c.Groups), torch.tensor(c.Ratings), torch.tensor(c.Mask, [c.N, c.T]));
        objective(result).backward();
        return new FusedRun(result.Loss.item<double>(), D(result.ResponseNll), D(result.SftTerms), D(result.RankingTerms), [.. result.BestHasLowestNll],
            D(hidden.grad!), D(weight.grad!));
    }

    [Fact]
    public void A_frozen_output_layer_gets_no_gradient_and_evaluation_without_gradients_gives_the_same_loss()
    {
        var c = LossCases.BuildHidden(n: 4, t: 3, h: 5, v: 17, groupCount: 2, integerRatings: true, seed: 2);
        using var loss = new ContrastivePreferenceLoss { FusedChunkRows = 4 };
        using var scope = torch.NewDisposeScope();
        var hidden = torch.tensor(c.Hidden, [c.N, c.T, c.H]).requires_grad_(true);
        var weight = torch.tensor(c.Weight, [c.V, c.H]); // frozen
        var targets = torch.tensor(c.Targets, [c.N, c.T]);
        using var trained = loss.ComputeFromHidden(hidden, weight, targets, torch.tensor(c.Groups), torch.tensor(c.Ratings));
        trained.Loss.backward();
        Assert.Null(weight.grad);
        var want = PreferenceLossOracle.Compute(c, new ContrastivePreferenceOptions());
        Assert.True(Close(D(hidden.grad!), want.GradHidden, 1e-9, 1e-12));

        using var noGrad = torch.no_grad();
        using var evaluated = loss.ComputeFromHidden(hidden, weight, targets, torch.tensor(c.Groups), torch.tensor(c.Ratings));
        Assert.False(evaluated.Loss.requires_grad);
        Assert.Equal(want.Terms.Loss, evaluated.Loss.item<double>(), 10);
    }

    [Fact]
    public void A_weight_that_is_itself_computed_gets_its_gradient_through_autograd()
    {
        var c = LossCases.BuildHidden(n: 4, t: 3, h: 5, v: 17, groupCount: 2, integerRatings: true, seed: 3);
        using var loss = new ContrastivePreferenceLoss { FusedChunkRows = 5 };
        using var scope = torch.NewDisposeScope();
        var hidden = torch.tensor(c.Hidden, [c.N, c.T, c.H]).requires_grad_(true);
        var source = torch.tensor(c.Weight, [c.V, c.H]).requires_grad_(true);
        using var result = loss.ComputeFromHidden(hidden, source * 2, torch.tensor(c.Targets, [c.N, c.T]), torch.tensor(c.Groups), torch.tensor(c.Ratings),
            torch.tensor(c.Mask, [c.N, c.T]));
        result.Loss.backward();
        var want = PreferenceLossOracle.Compute(c with { Weight = c.Weight.Select(w => 2 * w).ToArray() }, new ContrastivePreferenceOptions());
        Assert.True(Close(D(source.grad!), want.GradWeight.Select(g => 2 * g).ToArray(), 1e-9, 1e-12));
        Assert.True(Close(D(hidden.grad!), want.GradHidden, 1e-9, 1e-12));
    }

    [Fact]
    public void The_workspace_is_bounded_by_the_chunk_not_the_batch_and_reused_across_calls()
    {
        var c = LossCases.BuildHidden(n: 6, t: 20, h: 4, v: 200, groupCount: 2, integerRatings: true, seed: 4);
        using var loss = new ContrastivePreferenceLoss { FusedChunkRows = 8 };
        RunFused(c, loss, ScalarType.Float64);
        var after = loss.WorkspaceBytes;
        RunFused(c, loss, ScalarType.Float64);
        Assert.Equal(after, loss.WorkspaceBytes);
        // 8 rows of 200 float64 logits plus [8, H] scratch and small buffers; the batch's logits would take 6*20*200*8 bytes.
        Assert.InRange(after, 8 * 200 * 8, 8 * 200 * 8 + 4096);
    }

    [Fact]
    public void Bad_inputs_name_the_argument()
    {
        using var loss = new ContrastivePreferenceLoss();
        var groups = torch.zeros(2, ScalarType.Int64);
        var ratings = torch.tensor(new[] { 3.0, 5.0 });
        var targets = torch.ones([2, 3], ScalarType.Int64);
        ArgumentException Reject(Tensor hidden, Tensor weight, Tensor t) =>
            Assert.ThrowsAny<ArgumentException>(() => loss.ComputeFromHidden(hidden, weight, t, groups, ratings).Dispose());

        Assert.Equal("hidden", Reject(torch.randn(2, 3), torch.randn(5, 3), targets).ParamName);
        Assert.Equal("hidden", Reject(torch.ones([2, 3, 4], ScalarType.Int32), torch.randn(5, 4), targets).ParamName);
        var shape = Reject(torch.randn(2, 3, 4), torch.randn(5, 3), targets);
        Assert.Equal("outputWeight", shape.ParamName);
        Assert.Contains("[5, 3]", shape.Message);
        Assert.Equal("outputWeight", Reject(torch.randn(2, 3, 4), torch.randn(5, 4, ScalarType.Float64), targets).ParamName);
        var t = Reject(torch.randn(2, 3, 4), torch.randn(5, 4), torch.ones([2, 4], ScalarType.Int64));
        Assert.Equal("targets", t.ParamName);
        Assert.Contains("hidden [2, 3, 4]", t.Message);
        Assert.Contains("targets[0, 1]", Reject(torch.randn(2, 3, 4), torch.randn(5, 4), torch.tensor(new long[] { 1, 7, 1, 1, 1, 1 }, [2, 3])).Message);
        Assert.Equal("FusedChunkRows", Assert.Throws<ArgumentOutOfRangeException>(() => new ContrastivePreferenceLoss { FusedChunkRows = -1 }).ParamName);
    }
}
