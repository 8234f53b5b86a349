using System.Text;
using FsCheck.Xunit;
using StableAlignment.Core.Evaluation;

namespace StableAlignment.Core.Tests.Evaluation;

public class LikelihoodRequestTests
{
    [Fact]
    public void Trailing_context_whitespace_moves_onto_the_continuation()
    {
        var r = LikelihoodRequest.Create("Question: x\nAnswer: \n", " yes");
        Assert.Equal("Question: x\nAnswer:", r.Context);
        Assert.Equal(" \n yes", r.Continuation);
    }

    [Fact]
    public void A_context_without_trailing_whitespace_is_kept()
    {
        var r = LikelihoodRequest.Create("Answer:", " no");
        Assert.Equal(new LikelihoodRequest("Answer:", " no"), r);
    }

    [Fact]
    public void An_empty_continuation_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => LikelihoodRequest.Create("ctx", ""));
    }
}

public class ItemMetricsTests
{
    private static readonly string[] ThreeChoices = ["a", "bb", "ccc"];

    [Fact]
    public void Worked_example_acc_and_acc_norm_disagree()
    {
        // Raw scores pick "a" (-2); per character a = -2, bb = -1.5, ccc = -1.5, so acc_norm picks a wrong choice.
        var m = ItemMetrics.Compute(ThreeChoices, [true, false, false], [-2, -3, -4.5], TieBreaking.Strict);
        Assert.True(m.Accuracy);
        Assert.False(m.AccuracyNormalized);
        double z = Math.Exp(-2) + Math.Exp(-3) + Math.Exp(-4.5);
        Assert.Equal(Math.Exp(-2) / z, m.TrueProbabilityMass, 12);
        double p0 = Math.Exp(-2) / z, p1 = Math.Exp(-3) / z, p2 = Math.Exp(-4.5) / z;
        Assert.Equal(((p0 - 1) * (p0 - 1)) + (p1 * p1) + (p2 * p2), m.Brier, 12);
    }

    [Fact]
    public void A_tie_with_a_wrong_choice_is_wrong_when_strict_and_right_for_first_index_when_gold_comes_first()
    {
        string[] choices = ["x", "y"];
        bool[] goldFirst = [true, false];
        bool[] goldSecond = [false, true];
        double[] tied = [-1, -1];
        Assert.False(ItemMetrics.Compute(choices, goldFirst, tied, TieBreaking.Strict).Accuracy);
        Assert.True(ItemMetrics.Compute(choices, goldFirst, tied, TieBreaking.FirstIndex).Accuracy);
        Assert.False(ItemMetrics.Compute(choices, goldSecond, tied, TieBreaking.FirstIndex).Accuracy);
    }

    [Fact]
    public void A_tie_between_two_true_choices_is_still_right_when_strict()
    {
        var m = ItemMetrics.Compute(ThreeChoices, [true, true, false], [-1, -1, -2], TieBreaking.Strict);
        Assert.True(m.Accuracy);
    }

    [Fact]
    public void Acc_norm_counts_unicode_scalars_like_python_len_and_acc_bytes_counts_utf8()
    {
        // "😀" is one scalar (two UTF-16 units, four bytes); "ab" two scalars and two bytes.
        string[] choices = ["😀", "ab"];
        bool[] labels = [true, false];
        // Per scalar: -1.5 vs -1.0 -> "ab" wins. Per byte: -0.375 vs -1.0 -> emoji wins.
        var m = ItemMetrics.Compute(choices, labels, [-1.5, -2.0], TieBreaking.Strict);
        Assert.False(m.AccuracyNormalized);
        Assert.True(m.AccuracyBytes);
        Assert.Equal(1, ItemMetrics.CharacterLength("😀"));
    }

    [Fact]
    public void Negative_infinity_is_a_valid_score_and_nan_is_not()
    {
        var m = ItemMetrics.Compute(["a", "b"], [true, false], [-1, double.NegativeInfinity], TieBreaking.Strict);
        Assert.True(m.Accuracy);
        Assert.Equal(1.0, m.TrueProbabilityMass);
        Assert.Throws<ArgumentException>(() => ItemMetrics.Compute(["a", "b"], [true, false], [double.NaN, -1], TieBreaking.Strict));
    }

    /// <summary>Every metric agrees with a float64 oracle written with plain loops, on random items with ties.</summary>
    [Property(MaxTest = 300)]
    public bool Metrics_match_a_plain_loop_oracle(int seed, bool strict)
    {
        var rng = new Random(seed);
        int n = rng.Next(2, 9);
        var choices = new string[n];
        var labels = new bool[n];
        var scores = new double[n];
        string[] alphabet = ["a", "é", "字", "😀", " "];
        for (int i = 0; i < n; i++)
        {
            var sb = new StringBuilder();
            int len = rng.Next(1, 6);
            for (int k = 0; k < len; k++)
            {
                sb.Append(alphabet[rng.Next(alphabet.Length)]);
            }
            choices[i] = sb.ToString();
            labels[i] = rng.Next(3) == 0;
            // Small integer scores make ties common.
            scores[i] = rng.Next(2) == 0 ? -rng.Next(1, 4) : -rng.NextDouble() * 10;
        }
        labels[rng.Next(n)] = true;
        var ties = strict ? TieBreaking.Strict : TieBreaking.FirstIndex;
        var m = ItemMetrics.Compute(choices, labels, scores, ties);

        bool OracleCorrect(double[] s)
        {
            double max = s.Max();
            if (!strict)
            {
                for (int i = 0; i < s.Length; i++)
                {
                    if (s[i] == max)
                    {
                        return labels[i];
                    }
                }
            }
            for (int i = 0; i < s.Length; i++)
            {
                if (s[i] == max && !labels[i])
                {
                    return false;
                }
            }
            return true;
        }

        var perChar = new double[n];
        var perByte = new double[n];
        for (int i = 0; i < n; i++)
        {
            int scalars = 0;
            for (int k = 0; k < choices[i].Length; k++)
            {
                if (!char.IsLowSurrogate(choices[i][k]))
                {
                    scalars++;
                }
            }
            perChar[i] = scores[i] / scalars;
            perByte[i] = scores[i] / Encoding.UTF8.GetBytes(choices[i]).Length;
        }
        int trueCount = labels.Count(l => l);
        double mass = 0, brier = 0;
        for (int i = 0; i < n; i++)
        {
            double denom = 0;
            for (int j = 0; j < n; j++)
            {
                denom += Math.Exp(scores[j] - scores[i]);
            }
            double p = 1 / denom;
            if (labels[i])
            {
                mass += p;
            }
            double target = labels[i] ? 1.0 / trueCount : 0;
            brier += (p - target) * (p - target);
        }
        return m.Accuracy == OracleCorrect(scores)
            && m.AccuracyNormalized == OracleCorrect(perChar)
            && m.AccuracyBytes == OracleCorrect(perByte)
            && Math.Abs(m.TrueProbabilityMass - mass) < 1e-12
            && Math.Abs(m.Brier - brier) < 1e-12;
    }
}
