using FsCheck;
using FsCheck.Fluent;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

/// <summary>DPO and RRHF against the float64 oracles of <see cref="BaselineLossOracle"/>, and their input rules.</summary>
public sealed class BaselineLossTests
{
    private static readonly Gen<(double Beta, LengthNormalization Norm)> DpoGen =
        from beta in Gen.Elements(0.1, 0.5, 2.0)
        from norm in Gen.Elements(LengthNormalization.TokenMean, LengthNormalization.Sum)
        select (beta, norm);

    private static readonly Gen<(double Weight, LengthNormalization Norm)> RrhfGen =
        from weight in Gen.Elements(0.0, 1.0, 3.0)
        from norm in Gen.Elements(LengthNormalization.TokenMean, LengthNormalization.Sum)
        select (weight, norm);

    /// <summary>Reference NLLs for a case: positive sums of the size token NLLs have, from the case's seed-free shape.</summary>
    private static double[] ReferenceFor(LossCase c) =>
        [.. Enumerable.Range(0, c.N).Select(i => 0.5 + ((i * 7919 + c.T * 31 + c.V) % 97) / 10.0)];

    private static OracleResult Run(LossCase c, ScalarType dtype, Func<Tensor, Tensor, Tensor, Tensor, Tensor, PreferenceLossResult> compute)
    {
        using var scope = torch.NewDisposeScope();
        var logits = torch.tensor(c.Logits, [c.N, c.T, c.V]).to(dtype).detach().requires_grad_(true);
        using var result = compute(logits, torch.tensor(c.Targets, [c.N, c.T]), torch.tensor(c.Groups), torch.tensor(c.Ratings), torch.tensor(c.Mask, [c.N, c.T]));
        result.Loss.backward();
        return new OracleResult(result.Loss.to(ScalarType.Float64).item<double>(), ToArray(result.ResponseNll), ToArray(result.SftTerms),
            ToArray(result.RankingTerms), ToArray(logits.grad!), [.. result.BestHasLowestNll]);
    }

    private static double[] ToArray(Tensor t) => t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();

    private static bool Close(double[] actual, double[] expected, double rtol, double atol) =>
        actual.Length == expected.Length && actual.Zip(expected).All(p => Math.Abs(p.First - p.Second) <= atol + rtol * Math.Abs(p.Second));

    private static bool Matches(OracleResult actual, OracleResult expected, double rtol, double atol) =>
        Close([actual.Loss], [expected.Loss], rtol, atol) && Close(actual.Nll, expected.Nll, rtol, atol) && Close(actual.Sft, expected.Sft, rtol, atol)
        && Close(actual.Rank, expected.Rank, rtol, atol) && Close(actual.GradLogits, expected.GradLogits, 100 * rtol, atol)
        && actual.BestHasLowestNll.SequenceEqual(expected.BestHasLowestNll);

    private static PreferenceLossResult Dpo(LossCase c, double beta, LengthNormalization norm, Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor mask) =>
        new DpoLoss(new DpoOptions { Beta = beta }, new ContrastivePreferenceOptions { LengthNormalization = norm })
            .ComputeWithReference(logits, targets, groups, ratings, torch.tensor(ReferenceFor(c)), mask);

    [FsCheck.Xunit.Property(MaxTest = 120)]
    public Property Dpo_float64_loss_and_gradient_match_the_oracle() =>
        Prop.ForAll(LossCases.Any().ToArbitrary(), DpoGen.ToArbitrary(), (c, o) =>
        {
            var expected = BaselineLossOracle.Dpo(c, ReferenceFor(c), o.Beta, o.Norm);
            var actual = Run(c, ScalarType.Float64, (l, t, g, r, m) => Dpo(c, o.Beta, o.Norm, l, t, g, r, m));
            return Matches(actual, expected, 1e-10, 1e-12).Label($"{c} beta={o.Beta} {o.Norm}");
        });

    [FsCheck.Xunit.Property(MaxTest = 40)]
    public Property Dpo_float32_matches_the_oracle_within_float_tolerance() =>
        Prop.ForAll(LossCases.Any(maxV: 200).ToArbitrary(), DpoGen.ToArbitrary(), (c, o) =>
        {
            var expected = BaselineLossOracle.Dpo(c, ReferenceFor(c), o.Beta, o.Norm);
            var actual = Run(c, ScalarType.Float32, (l, t, g, r, m) => Dpo(c, o.Beta, o.Norm, l, t, g, r, m));
            return (Close([actual.Loss], [expected.Loss], 5e-4, 1e-5) && Close(actual.GradLogits, expected.GradLogits, 5e-4, 1e-5)).Label($"{c}");
        });

    [FsCheck.Xunit.Property(MaxTest = 120)]
    public Property Rrhf_float64_loss_and_gradient_match_the_oracle() =>
        Prop.ForAll(LossCases.Any().ToArbitrary(), RrhfGen.ToArbitrary(), (c, o) =>
        {
            var expected = BaselineLossOracle.Rrhf(c, o.Weight, o.Norm);
            var loss = new RrhfLoss(new RrhfOptions { RankingWeight = o.Weight }, new ContrastivePreferenceOptions { LengthNormalization = o.Norm });
            var actual = Run(c, ScalarType.Float64, (l, t, g, r, m) => loss.Compute(l, t, g, r, m));
            return Matches(actual, expected, 1e-10, 1e-12).Label($"{c} weight={o.Weight} {o.Norm}");
        });

    [FsCheck.Xunit.Property(MaxTest = 40)]
    public Property Rrhf_float32_matches_the_oracle_within_float_tolerance() =>
        Prop.ForAll(LossCases.Any(maxV: 200).ToArbitrary(), RrhfGen.ToArbitrary(), (c, o) =>
        {
            var expected = BaselineLossOracle.Rrhf(c, o.Weight, o.Norm);
            var loss = new RrhfLoss(new RrhfOptions { RankingWeight = o.Weight }, new ContrastivePreferenceOptions { LengthNormalization = o.Norm });
            var actual = Run(c, ScalarType.Float32, (l, t, g, r, m) => loss.Compute(l, t, g, r, m));
            return (Close([actual.Loss], [expected.Loss], 5e-4, 1e-5) && Close(actual.GradLogits, expected.GradLogits, 5e-4, 1e-5)).Label($"{c}");
        });

    [Fact]
    public void Dpo_of_a_policy_equal_to_its_reference_is_log_two_per_pair()
    {
        // Two groups: ratings [7, 3, 3] (two pairs) and [5] (none). With pi = pi_ref every implicit reward margin is 0.
        var c = LossCases.Build(n: 4, t: 3, v: 11, groupCount: 2, integerRatings: true, seed: 3) with { Groups = [0, 1, 0, 0], Ratings = [7, 5, 3, 3] };
        var policySums = BaselineLossOracle.Dpo(c, new double[c.N], 1, LengthNormalization.Sum).Nll;
        var result = Run(c, ScalarType.Float64, (l, t, g, r, m) => new DpoLoss().ComputeWithReference(l, t, g, r, torch.tensor(policySums), m));
        Assert.Equal(Math.Log(2), result.Loss, 12);
        Assert.Equal([Math.Log(2), 0], result.Rank, (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void A_batch_without_pairs_has_zero_loss_and_a_zero_gradient()
    {
        var c = LossCases.Build(n: 3, t: 2, v: 5, groupCount: 3, integerRatings: true, seed: 1);
        var dpo = Run(c, ScalarType.Float64, (l, t, g, r, m) => new DpoLoss().ComputeWithReference(l, t, g, r, torch.tensor(ReferenceFor(c)), m));
        Assert.Equal(0, dpo.Loss);
        Assert.All(dpo.GradLogits, x => Assert.Equal(0, x));
    }

    public static TheoryData<string> Losses() => ["dpo", "rrhf"];

    private static IPreferenceLoss Create(string name) => name == "dpo" ? new DpoLoss() : new RrhfLoss();

    private static void Reject(string name, string param, Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor? mask = null)
    {
        var loss = Create(name);
        var e = Assert.ThrowsAny<ArgumentException>(() =>
            (loss is DpoLoss dpo ? dpo.ComputeWithReference(logits, targets, groups, ratings, torch.zeros(logits.shape[0]), mask) : loss.Compute(logits, targets, groups, ratings, mask)).Dispose());
        Assert.Equal(param, e.ParamName);
    }

    [Theory]
    [MemberData(nameof(Losses))]
    public void Bad_input_is_refused_as_the_contrastive_loss_refuses_it(string name)
    {
        var ones = torch.ones([2, 3], ScalarType.Int64);
        var groups = torch.zeros(2, ScalarType.Int64);
        var ratings = torch.tensor(new[] { 3.0, 5.0 });
        Reject(name, "targets", torch.randn(2, 3, 5), torch.ones([2, 4], ScalarType.Int64), groups, ratings);
        Reject(name, "logits", torch.randn(2, 3), ones, groups, ratings);
        Reject(name, "groups", torch.randn(2, 3, 5), ones, torch.zeros(3, ScalarType.Int64), ratings);
        Reject(name, "ratings", torch.randn(2, 3, 5), ones, groups, torch.tensor(new[] { 3.0, 9.0 }));
        Reject(name, "groups", torch.randn(2, 3, 5), ones, torch.tensor(new long[] { 0, 2 }), ratings);
        Reject(name, "lossMask", torch.randn(2, 3, 5), ones, groups, ratings, torch.zeros([2, 3], ScalarType.Bool));
        Reject(name, "targets", torch.randn(2, 3, 5), torch.full([2, 3], 7L), groups, ratings);
    }

    [Fact]
    public void Dpo_names_a_bad_reference_and_refuses_to_run_without_one()
    {
        var logits = torch.randn(2, 3, 5);
        var targets = torch.ones([2, 3], ScalarType.Int64);
        var groups = torch.zeros(2, ScalarType.Int64);
        var ratings = torch.tensor(new[] { 3.0, 5.0 });
        var wrongShape = Assert.Throws<ArgumentException>(() => new DpoLoss().ComputeWithReference(logits, targets, groups, ratings, torch.zeros(3)));
        Assert.Equal("referenceNll", wrongShape.ParamName);
        var nan = Assert.Throws<ArgumentException>(() => new DpoLoss().ComputeWithReference(logits, targets, groups, ratings, torch.tensor(new[] { 1.0, double.NaN })));
        Assert.Contains("referenceNll[1]", nan.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => new DpoLoss().Compute(logits, targets, groups, ratings));
        Assert.Equal("Beta", Assert.Throws<ArgumentException>(() => new DpoLoss(new DpoOptions { Beta = 0 })).ParamName);
        Assert.Equal("RankingWeight", Assert.Throws<ArgumentException>(() => new RrhfLoss(new RrhfOptions { RankingWeight = -1 })).ParamName);
    }
}
