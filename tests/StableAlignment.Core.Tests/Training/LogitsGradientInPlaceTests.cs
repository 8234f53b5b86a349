using FsCheck;
using FsCheck.Fluent;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

/// <summary>
/// <see cref="ContrastivePreferenceLoss.Compute"/> with <see cref="ContrastivePreferenceLoss.OverwriteLogitsWithGradient"/>
/// (the gradient written over non-leaf logits), and with the TorchSharp-operation row work, against the float64 oracle.
/// </summary>
public sealed class LogitsGradientInPlaceTests
{
    private static double[] D(Tensor t) => t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();

    private static bool Close(double[] actual, double[] expected, double rtol, double atol) =>
        actual.Length == expected.Length && actual.Zip(expected).All(p => Math.Abs(p.First - p.Second) <= atol + rtol * Math.Abs(p.Second));

    [FsCheck.Xunit.Property(MaxTest = 40)]
    public Property Non_leaf_logits_receive_their_gradient_in_place_and_upstream_gets_the_oracle_gradient() =>
        Prop.ForAll(LossCases.Any().ToArbitrary(), Gen.Elements(2.0, 0.5).ToArbitrary(), (c, factor) =>
        {
            using var scope = torch.NewDisposeScope();
            var source = torch.tensor(c.Logits, [c.N, c.T, c.V]).requires_grad_(true);
            var logits = source * factor; // non-leaf: the output of an operation, as the model's logits are
            var loss = new ContrastivePreferenceLoss { OverwriteLogitsWithGradient = true };
            using var result = loss.Compute(logits, torch.tensor(c.Targets, [c.N, c.T]), torch.tensor(c.Groups), torch.tensor(c.Ratings), torch.tensor(c.Mask, [c.N, c.T]));
            result.Loss.backward();
            var want = PreferenceLossOracle.Compute(c with { Logits = c.Logits.Select(x => x * factor).ToArray() }, new ContrastivePreferenceOptions());
            return (Close(D(logits), want.GradLogits, 1e-8, 1e-12)
                    && Close(D(source.grad!), want.GradLogits.Select(g => g * factor).ToArray(), 1e-8, 1e-12)).Label(c.ToString());
        });

    [Fact]
    public void Leaf_logits_are_never_overwritten()
    {
        var c = LossCases.Build(n: 4, t: 3, v: 9, groupCount: 2, integerRatings: true, seed: 1);
        var logits = torch.tensor(c.Logits, [c.N, c.T, c.V]).requires_grad_(true);
        using var result = new ContrastivePreferenceLoss { OverwriteLogitsWithGradient = true }.Compute(
            logits, torch.tensor(c.Targets, [c.N, c.T]), torch.tensor(c.Groups), torch.tensor(c.Ratings), torch.tensor(c.Mask, [c.N, c.T]));
        result.Loss.backward();
        Assert.Equal(c.Logits, D(logits));
        Assert.True(Close(D(logits.grad!), PreferenceLossOracle.Compute(c, new ContrastivePreferenceOptions()).GradLogits, 1e-8, 1e-12));
    }

    [FsCheck.Xunit.Property(MaxTest = 30)]
    public Property TorchSharp_operation_row_work_matches_the_oracle() =>
        Prop.ForAll(LossCases.Any().ToArbitrary(), Gen.Elements(ScalarType.Float64, ScalarType.Float32).ToArbitrary(), (c, dtype) =>
        {
            using var scope = torch.NewDisposeScope();
            var logits = torch.tensor(c.Logits, [c.N, c.T, c.V]).to(dtype).detach().requires_grad_(true);
            var loss = new ContrastivePreferenceLoss { RowBackend = LogitRowBackend.TorchOps };
            using var result = loss.Compute(logits, torch.tensor(c.Targets, [c.N, c.T]), torch.tensor(c.Groups), torch.tensor(c.Ratings), torch.tensor(c.Mask, [c.N, c.T]));
            result.Loss.backward();
            var want = PreferenceLossOracle.Compute(c, new ContrastivePreferenceOptions());
            var (rtol, atol) = dtype == ScalarType.Float64 ? (1e-8, 1e-12) : (5e-4, 1e-5);
            return (Math.Abs(result.Loss.to(ScalarType.Float64).item<double>() - want.Loss) <= atol + rtol * Math.Abs(want.Loss)
                    && Close(D(logits.grad!), want.GradLogits, rtol, atol)).Label(c.ToString());
        });
}
