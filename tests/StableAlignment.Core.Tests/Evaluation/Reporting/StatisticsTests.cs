using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Tests.Evaluation;

public class StatisticsTests
{
    // Expected values computed independently (Python: statistics.NormalDist, math.comb, math.erfc).
    [Theory]
    [InlineData(0, 10, 0.0, 0.27753279986288915)]
    [InlineData(81, 263, 0.2552885198782743, 0.3662095769828001)]
    [InlineData(10, 10, 0.7224672001371109, 1.0)]
    [InlineData(1354, 2704, 0.48190618118688355, 0.5195710101704504)]
    public void Wilson_interval_matches_worked_values(int successes, int n, double lower, double upper)
    {
        var e = ProportionEstimate.Wilson(successes, n, 0.95);
        Assert.Equal(lower, e.Lower, 1e-9);
        Assert.Equal(upper, e.Upper, 1e-9);
        Assert.Equal((double)successes / n, e.Value);
    }

    [Fact]
    public void Wilson_rejects_impossible_counts()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ProportionEstimate.Wilson(3, 2, 0.95));
        Assert.Throws<ArgumentOutOfRangeException>(() => ProportionEstimate.Wilson(0, 0, 0.95));
    }

    [Fact]
    public void Mean_uses_sample_standard_deviation_and_student_t()
    {
        var e = MeanEstimate.Of([1.0, 2, 3, 4], 0.95);
        Assert.Equal(2.5, e.Mean);
        Assert.Equal(0.6454972243679028, e.StandardError, 1e-12);
        const double t3 = 3.182446305284263; // t quantile, 3 degrees of freedom, 0.975
        Assert.Equal(2.5 - (t3 * 0.6454972243679028), e.Lower, 1e-9);
        Assert.Equal(2.5 + (t3 * 0.6454972243679028), e.Upper, 1e-9);
    }

    private static TaskResults Outcomes(string model, params bool[] correct) =>
        new("t", PrimaryMetric.Accuracy, TieBreaking.Strict, correct.Select((c, i) => new ItemResult
        {
            Model = model,
            Task = "t",
            Id = "i" + i,
            Choices = ["a", "b"],
            Labels = [true, false],
            LogLikelihoods = c ? [-1.0, -2.0] : [-2.0, -1.0],
            Metrics = ItemMetrics.Compute(["a", "b"], [true, false], c ? [-1.0, -2.0] : [-2.0, -1.0], TieBreaking.Strict),
        }).ToArray()) { Model = model };

    private static (bool[] A, bool[] B) Pairs(int both, int onlyA, int onlyB, int neither)
    {
        var a = new List<bool>();
        var b = new List<bool>();
        void Add(int n, bool x, bool y)
        {
            for (int i = 0; i < n; i++)
            {
                a.Add(x);
                b.Add(y);
            }
        }
        Add(both, true, true);
        Add(onlyA, true, false);
        Add(onlyB, false, true);
        Add(neither, false, false);
        return (a.ToArray(), b.ToArray());
    }

    [Fact]
    public void McNemar_is_exact_binomial_for_few_discordant_pairs()
    {
        var (a, b) = Pairs(5, 1, 8, 3);
        var c = PairedComparison.McNemar(Outcomes("A", a), Outcomes("B", b));
        Assert.True(c.Exact);
        Assert.Equal((5, 1, 8, 3), (c.BothCorrect, c.OnlyA, c.OnlyB, c.BothWrong));
        Assert.Equal(0.0390625, c.PValue, 1e-12);
        Assert.Equal(-7.0 / 17, c.AccuracyDifference, 1e-12);
    }

    [Fact]
    public void McNemar_at_24_discordant_pairs_is_still_exact()
    {
        var (a, b) = Pairs(0, 10, 14, 1);
        var c = PairedComparison.McNemar(Outcomes("A", a), Outcomes("B", b));
        Assert.True(c.Exact);
        Assert.Equal(0.5412561893463135, c.PValue, 1e-12);
    }

    [Fact]
    public void McNemar_uses_continuity_corrected_chi_square_for_many_discordant_pairs()
    {
        var (a, b) = Pairs(10, 30, 50, 10);
        var c = PairedComparison.McNemar(Outcomes("A", a), Outcomes("B", b));
        Assert.False(c.Exact);
        Assert.Equal(0.03364802587476163, c.PValue, 1e-9);
    }

    [Fact]
    public void McNemar_keeps_tiny_p_values_instead_of_rounding_them_to_zero()
    {
        // 79 discordant pairs all one way: chi = 78^2 / 79, p = erfc(sqrt(chi / 2)) from Python's math.erfc.
        var (a, b) = Pairs(154, 79, 0, 12);
        var c = PairedComparison.McNemar(Outcomes("A", a), Outcomes("B", b));
        Assert.False(c.Exact);
        Assert.Equal(1.6986574258169638e-18, c.PValue, 1e-27);
    }

    [Fact]
    public void McNemar_pairs_items_by_id_and_refuses_different_item_sets()
    {
        var a = Outcomes("A", true, false, true);
        var reversed = Outcomes("B", true, false, true) with { };
        reversed = reversed with { Items = reversed.Items.Reverse().ToArray() };
        var same = PairedComparison.McNemar(a, reversed);
        Assert.Equal(2, same.BothCorrect);
        Assert.Equal(1, same.BothWrong);
        Assert.Equal(1.0, same.PValue);
        var fewer = Outcomes("B", true, false);
        Assert.Throws<ArgumentException>(() => PairedComparison.McNemar(a, fewer));
    }
}
