using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Tests.Evaluation;

public sealed class PairedDifferenceTests
{
    /// <summary>The two-sided sign test written here: P(|S| >= |s|) for S a sum of m fair +-1 signs, by the binomial.</summary>
    private static double SignTest(int positive, int negative)
    {
        int m = positive + negative, k = Math.Min(positive, negative);
        if (positive == negative) return 1;
        double tail = 0;
        for (int i = 0; i <= k; i++) tail += Math.Exp(LogChoose(m, i) - m * Math.Log(2));
        return Math.Min(1, 2 * tail);
    }

    private static double LogChoose(int n, int k) => Enumerable.Range(1, k).Sum(i => Math.Log(n - k + i) - Math.Log(i));

    [Theory]
    [InlineData(7, 1, 3)]
    [InlineData(10, 2, 0)]
    [InlineData(3, 3, 5)]
    [InlineData(12, 4, 0)]
    public void Binary_differences_give_the_exact_sign_test(int up, int down, int ties)
    {
        var d = Enumerable.Repeat(1.0, up).Concat(Enumerable.Repeat(-1.0, down)).Concat(Enumerable.Repeat(0.0, ties)).ToList();
        var test = PairedDifference.Test(d);
        Assert.True(test.Exact);
        Assert.Equal(SignTest(up, down), test.PValue, 12);
        Assert.Equal((up, down, up + down + ties), (test.Positive, test.Negative, test.Count));
        Assert.Equal((up - down) / (double)(up + down + ties), test.MeanDifference, 12);
    }

    [Fact]
    public void Many_differences_are_sampled_close_to_the_exact_test_and_reproducibly()
    {
        var d = Enumerable.Repeat(1.0, 29).Concat(Enumerable.Repeat(-1.0, 16)).ToList();
        var test = PairedDifference.Test(d);
        Assert.False(test.Exact);
        Assert.InRange(test.PValue, SignTest(29, 16) - 0.01, SignTest(29, 16) + 0.01);
        Assert.Equal(test, PairedDifference.Test(d));
    }

    [Fact]
    public void Bad_differences_are_refused()
    {
        Assert.Throws<ArgumentException>(() => PairedDifference.Test([]));
        Assert.Contains("differences[1]", Assert.Throws<ArgumentException>(() => PairedDifference.Test([1, double.NaN])).Message, StringComparison.Ordinal);
        Assert.Equal(1, PairedDifference.Test([0, 0, 0]).PValue);
    }
}
