using FsCheck;
using FsCheck.Fluent;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

public sealed class ContrastivePreferenceLossTests
{
    /// <summary>Random options: every reduction and normalisation, sometimes SFT only, margins 0-10, weights 0.2-1.</summary>
    internal static readonly Gen<ContrastivePreferenceOptions> OptionsGen =
        from reduction in Gen.Elements(RankingReduction.HingeOfMean, RankingReduction.MeanOfHinges, RankingReduction.HingeOfMax)
        from norm in Gen.Elements(LengthNormalization.TokenMean, LengthNormalization.Sum)
        from sftOnly in Gen.Elements(false, false, true)
        from margin in Gen.Elements(0.0, 1.0, 10.0)
        from weight in Gen.Elements(0.2, 0.5, 1.0)
        select new ContrastivePreferenceOptions { Reduction = reduction, LengthNormalization = norm, SftOnly = sftOnly, Margin = margin, RankingWeight = weight };

    /// <summary>Runs the TorchSharp path on a case; returns everything as float64 host arrays.</summary>
    internal static OracleResult RunReference(LossCase c, ContrastivePreferenceOptions o, ScalarType dtype, bool useMaskTensor = true)
    {
        using var scope = torch.NewDisposeScope();
        var logits = torch.tensor(c.Logits, [c.N, c.T, c.V]).to(dtype).detach().requires_grad_(true);
        var targets = torch.tensor(c.Targets, [c.N, c.T]);
        var mask = useMaskTensor ? torch.tensor(c.Mask, [c.N, c.T]) : null;
        var loss = new ContrastivePreferenceLoss(o);
        using var result = loss.Compute(logits, targets, torch.tensor(c.Groups), torch.tensor(c.Ratings), mask);
        result.Loss.backward();
        return new OracleResult(
            result.Loss.to(ScalarType.Float64).item<double>(),
            ToArray(result.ResponseNll),
            ToArray(result.SftTerms),
            ToArray(result.RankingTerms),
            ToArray(logits.grad!),
            [.. result.BestHasLowestNll]);
    }

    private static double[] ToArray(Tensor t) => t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();

    private static bool Close(double[] actual, double[] expected, double rtol, double atol) =>
        actual.Length == expected.Length && actual.Zip(expected).All(p => Math.Abs(p.First - p.Second) <= atol + rtol * Math.Abs(p.Second));

    private static bool Close(double actual, double expected, double rtol, double atol) => Math.Abs(actual - expected) <= atol + rtol * Math.Abs(expected);

    [FsCheck.Xunit.Property(MaxTest = 150)]
    public Property Float64_loss_and_gradient_match_the_oracle() =>
        Prop.ForAll(LossCases.Any().ToArbitrary(), OptionsGen.ToArbitrary(), (c, o) =>
        {
            var expected = PreferenceLossOracle.Compute(c, o);
            var actual = RunReference(c, o, ScalarType.Float64);
            return (Close(actual.Loss, expected.Loss, 1e-10, 1e-12)
                    && Close(actual.Nll, expected.Nll, 1e-10, 1e-12)
                    && Close(actual.Sft, expected.Sft, 1e-10, 1e-12)
                    && Close(actual.Rank, expected.Rank, 1e-10, 1e-12)
                    && Close(actual.GradLogits, expected.GradLogits, 1e-8, 1e-12)
                    && actual.BestHasLowestNll.SequenceEqual(expected.BestHasLowestNll))
                .Label($"{c} {o}");
        });

    [FsCheck.Xunit.Property(MaxTest = 60)]
    public Property Float32_matches_the_oracle_within_float_tolerance() =>
        Prop.ForAll(LossCases.Any(maxV: 300).ToArbitrary(), OptionsGen.ToArbitrary(), (c, o) =>
        {
            var expected = PreferenceLossOracle.Compute(c, o);
            var actual = RunReference(c, o, ScalarType.Float32);
            return (Close(actual.Loss, expected.Loss, 5e-4, 1e-5)
                    && Close(actual.Nll, expected.Nll, 5e-4, 1e-5)
                    && Close(actual.GradLogits, expected.GradLogits, 5e-4, 1e-5)).Label($"{c} {o}");
        });

    [Fact]
    public void Bfloat16_logits_are_accumulated_in_float32()
    {
        var c = LossCases.Build(n: 6, t: 4, v: 257, groupCount: 2, integerRatings: true, seed: 7);
        // The oracle sees the logits exactly as bfloat16 stores them, so only accumulation error remains.
        var rounded = torch.tensor(c.Logits).to(ScalarType.BFloat16).to(ScalarType.Float64).data<double>().ToArray();
        var expected = PreferenceLossOracle.Compute(c with { Logits = rounded }, new ContrastivePreferenceOptions());
        var actual = RunReference(c, new ContrastivePreferenceOptions(), ScalarType.BFloat16);
        Assert.True(Close(actual.Loss, expected.Loss, 1e-5, 1e-6), $"{actual.Loss} vs {expected.Loss}");
        Assert.True(Close(actual.GradLogits, expected.GradLogits, 5e-2, 1e-3));
    }

    [Fact]
    public void Ignore_index_without_a_mask_tensor_gives_the_same_result_as_the_mask()
    {
        var c = LossCases.Build(n: 5, t: 6, v: 11, groupCount: 2, integerRatings: true, seed: 3);
        var withMask = RunReference(c, new ContrastivePreferenceOptions(), ScalarType.Float64, useMaskTensor: true);
        var withIgnore = RunReference(c, new ContrastivePreferenceOptions(), ScalarType.Float64, useMaskTensor: false);
        Assert.Equal(withMask.Loss, withIgnore.Loss, 12);
        Assert.True(Close(withIgnore.GradLogits, withMask.GradLogits, 0, 1e-15));
    }

    /// <summary>
    /// The spec's worked example: ratings [3, 7, 5]. With the 7-rated response best, the 3-rated response gets margin
    /// M*4/7 and the 5-rated one M*2/7. The Python reference indexes the sorted ratings [7, 5, 3] by position and gives
    /// the 3-rated response margin 0 and the 5-rated one M*4/7.
    /// </summary>
    [Fact]
    public void Worked_example_uses_each_responses_own_rating()
    {
        // One token per response, V = 2: logits (0, z) with target 0 give NLL = log(1 + e^z).
        double[] z = [0.0, 0.5, 0.25];
        var logits = torch.tensor(z.SelectMany(x => new[] { 0.0, x }).ToArray(), [3, 1, 2]);
        var nll = z.Select(x => Math.Log(1 + Math.Exp(x))).ToArray();
        var options = new ContrastivePreferenceOptions { Margin = 10, RankingWeight = 0.2, Reduction = RankingReduction.MeanOfHinges };

        using var result = new ContrastivePreferenceLoss(options).Compute(
            logits, torch.zeros([3, 1], ScalarType.Int64), torch.zeros(3, ScalarType.Int64), torch.tensor(new double[] { 3, 7, 5 }));

        double dFor3 = nll[1] - nll[0] + 10 * 4 / 7.0;
        double dFor5 = nll[1] - nll[2] + 10 * 2 / 7.0;
        double expected = nll[1] + 0.2 * (Math.Max(0, dFor3) + Math.Max(0, dFor5)) / 2;
        double buggy = nll[1] + 0.2 * (Math.Max(0, nll[1] - nll[0] + 0) + Math.Max(0, nll[1] - nll[2] + 10 * 4 / 7.0)) / 2;

        Assert.Equal(expected, result.Loss.item<double>(), 12);
        Assert.NotEqual(buggy, result.Loss.item<double>(), 6);
        Assert.Equal(nll[1], result.SftTerms[0].item<double>(), 12);
    }

    [Fact]
    public void Ties_for_best_average_the_tied_responses_and_rank_only_the_others()
    {
        double[] z = [0.1, 0.9, -0.4];
        var logits = torch.tensor(z.SelectMany(x => new[] { 0.0, x }).ToArray(), [3, 1, 2]);
        var nll = z.Select(x => Math.Log(1 + Math.Exp(x))).ToArray();
        var options = new ContrastivePreferenceOptions { Margin = 1, RankingWeight = 0.5 };

        using var result = new ContrastivePreferenceLoss(options).Compute(
            logits, torch.zeros([3, 1], ScalarType.Int64), torch.zeros(3, ScalarType.Int64), torch.tensor(new double[] { 6, 6, 2 }));

        double sft = (nll[0] + nll[1]) / 2;
        double d = sft - nll[2] + 1 * 4 / 7.0;
        Assert.Equal(sft + 0.5 * Math.Max(0, d), result.Loss.item<double>(), 12);
        Assert.Equal(nll[2] > nll[0] ? true : false, result.BestHasLowestNll[0]);
    }

    [Fact]
    public void A_group_of_one_response_contributes_its_sft_term_only()
    {
        var logits = torch.tensor(new double[] { 0.3, -1.2, 2.0, 0.7, 0.1, -0.5 }, [2, 1, 3]);
        var targets = torch.tensor(new long[] { 2, 0 }, [2, 1]);
        using var result = new ContrastivePreferenceLoss().Compute(
            logits, targets, torch.tensor(new long[] { 0, 1 }), torch.tensor(new double[] { 2, 5 }));
        var nll = result.ResponseNll.data<double>().ToArray();
        Assert.Equal((nll[0] + nll[1]) / 2, result.Loss.item<double>(), 12);
        Assert.Equal([0.0, 0.0], result.RankingTerms.data<double>().ToArray());
        Assert.Equal([null, null], result.BestHasLowestNll);
        Assert.True(double.IsNaN(result.RankingAccuracy));
    }

    [Theory]
    [InlineData(1e4)]
    [InlineData(-1e4)]
    public void Extreme_logits_give_finite_values_that_match_the_oracle(double extreme)
    {
        var c = LossCases.Build(n: 4, t: 3, v: 9, groupCount: 2, integerRatings: true, seed: 11);
        var logits = (double[])c.Logits.Clone();
        for (int k = 0; k < logits.Length; k += 4) logits[k] = extreme;
        c = c with { Logits = logits };
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64, ScalarType.BFloat16 })
        {
            var actual = RunReference(c, new ContrastivePreferenceOptions(), dtype);
            Assert.True(double.IsFinite(actual.Loss), $"{dtype}: loss {actual.Loss}");
            Assert.All(actual.GradLogits, g => Assert.True(double.IsFinite(g)));
        }
        var expected = PreferenceLossOracle.Compute(c, new ContrastivePreferenceOptions());
        Assert.True(Close(RunReference(c, new ContrastivePreferenceOptions(), ScalarType.Float64).Loss, expected.Loss, 1e-12, 1e-9));
    }

    [FsCheck.Xunit.Property(MaxTest = 60)]
    public Property Permuting_responses_leaves_the_loss_unchanged() =>
        Prop.ForAll(LossCases.Any().ToArbitrary(), OptionsGen.ToArbitrary(), Gen.Choose(0, 1000).ToArbitrary(), (c, o, seed) =>
        {
            var perm = Enumerable.Range(0, c.N).OrderBy(_ => new Random(seed).Next()).ToArray();
            new Random(seed).Shuffle(perm);
            var permuted = Permute(c, perm);
            double a = RunReference(c, o, ScalarType.Float64).Loss, b = RunReference(permuted, o, ScalarType.Float64).Loss;
            return Close(b, a, 1e-12, 1e-12).Label($"{a} vs {b}");
        });

    [FsCheck.Xunit.Property(MaxTest = 60)]
    public Property Adding_a_constant_to_a_tokens_logits_leaves_the_loss_unchanged() =>
        Prop.ForAll(LossCases.Any().ToArbitrary(), OptionsGen.ToArbitrary(), Gen.Choose(-50, 50).ToArbitrary(), (c, o, shift) =>
        {
            var logits = (double[])c.Logits.Clone();
            for (int row = 0; row < c.N * c.T; row++)
                for (int k = 0; k < c.V; k++) logits[row * c.V + k] += shift * (row % 3 + 1);
            double a = RunReference(c, o, ScalarType.Float64).Loss, b = RunReference(c with { Logits = logits }, o, ScalarType.Float64).Loss;
            return Close(b, a, 1e-9, 1e-9).Label($"{a} vs {b}");
        });

    [FsCheck.Xunit.Property(MaxTest = 60)]
    public Property Raising_a_rating_gap_never_lowers_the_ranking_term() =>
        Prop.ForAll(LossCases.Any().ToArbitrary(), OptionsGen.ToArbitrary(), (c, o) =>
        {
            // Lower every non-best rating of each group by one step (staying on the scale): each gap grows,
            // the NLLs stay fixed, so every group's ranking term must not fall.
            var best = Enumerable.Range(0, c.GroupCount).Select(g => Enumerable.Range(0, c.N).Where(i => c.Groups[i] == g).Max(i => c.Ratings[i])).ToArray();
            var lowered = c.Ratings.Select((r, i) => r == best[c.Groups[i]] ? r : Math.Max(1.0, r - 1)).ToArray();
            var before = RunReference(c, o, ScalarType.Float64).Rank;
            var after = RunReference(c with { Ratings = lowered }, o, ScalarType.Float64).Rank;
            return before.Zip(after).All(p => p.Second >= p.First - 1e-12).Label($"{string.Join(",", before)} -> {string.Join(",", after)}");
        });

    private static LossCase Permute(LossCase c, int[] perm)
    {
        var logits = new double[c.Logits.Length];
        var targets = new long[c.Targets.Length];
        var mask = new bool[c.Mask.Length];
        for (int i = 0; i < c.N; i++)
        {
            Array.Copy(c.Logits, perm[i] * c.T * c.V, logits, i * c.T * c.V, c.T * c.V);
            Array.Copy(c.Targets, perm[i] * c.T, targets, i * c.T, c.T);
            Array.Copy(c.Mask, perm[i] * c.T, mask, i * c.T, c.T);
        }
        return c with
        {
            Logits = logits,
            Targets = targets,
            Mask = mask,
            Groups = perm.Select(p => c.Groups[p]).ToArray(),
            Ratings = perm.Select(p => c.Ratings[p]).ToArray(),
        };
    }

    [Fact]
    public void Autograd_runs_through_a_real_torchsharp_graph()
    {
        var x = torch.tensor(new float[] { 1, -2, 3 }).requires_grad_(true);
        var y = (x * x).sum() + x.exp().sum();
        y.backward();
        var expected = new[] { 2 + Math.Exp(1), -4 + Math.Exp(-2), 6 + Math.Exp(3) };
        Assert.True(Close(x.grad!.to(ScalarType.Float64).data<double>().ToArray(), expected, 1e-6, 1e-6));
    }
}

public sealed class ContrastivePreferenceLossLongRowTests
{
    [Fact]
    public void A_256k_vocabulary_is_processed_in_several_chunks_and_matches_the_oracle()
    {
        // 40 rows of 262,144 logits span three chunks of the token-NLL pass, so chunk boundaries are exercised.
        var c = LossCases.Build(n: 4, t: 10, v: 262_144, groupCount: 2, integerRatings: true, seed: 5);
        var options = new ContrastivePreferenceOptions { Reduction = RankingReduction.MeanOfHinges, Margin = 10 };
        var expected = PreferenceLossOracle.Compute(c, options);
        var actual = ContrastivePreferenceLossTests.RunReference(c, options, TorchSharp.torch.ScalarType.Float32);
        Assert.Equal(expected.Loss, actual.Loss, 4);
        for (int i = 0; i < c.N; i++) Assert.Equal(expected.Nll[i], actual.Nll[i], 4);
        double maxError = expected.GradLogits.Zip(actual.GradLogits).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(maxError < 1e-6, $"max |grad error| = {maxError}");
    }
}
