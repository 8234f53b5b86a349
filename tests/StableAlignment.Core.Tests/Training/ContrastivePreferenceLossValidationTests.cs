using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

public sealed class ContrastivePreferenceLossValidationTests
{
    private static readonly ContrastivePreferenceLoss Loss = new();

    private static ArgumentException Reject(Tensor logits, Tensor targets, Tensor groups, Tensor ratings, Tensor? mask = null) =>
        Assert.ThrowsAny<ArgumentException>(() => Loss.Compute(logits, targets, groups, ratings, mask).Dispose());

    private static Tensor Logits(long n = 2, long t = 3, long v = 5) => torch.randn([n, t, v]);

    private static Tensor Targets(long n = 2, long t = 3) => torch.ones([n, t], ScalarType.Int64);

    [Fact]
    public void Shape_mismatch_of_targets_names_the_argument_and_both_shapes()
    {
        var e = Reject(Logits(), Targets(2, 4), torch.zeros(2, ScalarType.Int64), torch.tensor(new[] { 3.0, 5.0 }));
        Assert.Equal("targets", e.ParamName);
        Assert.Contains("[2, 4]", e.Message);
        Assert.Contains("[2, 3, 5]", e.Message);
    }

    [Fact]
    public void Logits_of_the_wrong_rank_are_rejected() =>
        Assert.Equal("logits", Reject(torch.randn(2, 3), Targets(), torch.zeros(2, ScalarType.Int64), torch.tensor(new[] { 3.0, 5.0 })).ParamName);

    [Fact]
    public void Groups_and_ratings_of_the_wrong_length_are_rejected()
    {
        Assert.Equal("groups", Reject(Logits(), Targets(), torch.zeros(3, ScalarType.Int64), torch.tensor(new[] { 3.0, 5.0 })).ParamName);
        Assert.Equal("ratings", Reject(Logits(), Targets(), torch.zeros(2, ScalarType.Int64), torch.tensor(new[] { 3.0 })).ParamName);
        Assert.Equal("lossMask", Reject(Logits(), Targets(), torch.zeros(2, ScalarType.Int64), torch.tensor(new[] { 3.0, 5.0 }), torch.ones(2, 2)).ParamName);
    }

    [Fact]
    public void A_response_with_every_token_masked_is_named()
    {
        var mask = torch.tensor(new[] { true, true, false, false, false, false }, [2, 3]);
        var e = Reject(Logits(), Targets(), torch.tensor(new long[] { 0, 0 }), torch.tensor(new[] { 3.0, 5.0 }), mask);
        Assert.Contains("Response 1", e.Message);
        Assert.Contains("group 0", e.Message);
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(0.5)]
    [InlineData(7.5)]
    public void Invalid_ratings_are_named_by_index(double bad)
    {
        var e = Reject(Logits(), Targets(), torch.zeros(2, ScalarType.Int64), torch.tensor(new[] { 3.0, bad }));
        Assert.Equal("ratings", e.ParamName);
        Assert.Contains("ratings[1]", e.Message);
    }

    [Fact]
    public void An_empty_batch_is_rejected() =>
        Assert.Contains("empty", Reject(torch.randn(0, 3, 5), torch.ones([0, 3], ScalarType.Int64), torch.zeros(0, ScalarType.Int64), torch.zeros(0)).Message);

    [Fact]
    public void A_gap_in_group_numbering_is_named() =>
        Assert.Contains("Group 1", Reject(Logits(), Targets(), torch.tensor(new long[] { 0, 2 }), torch.tensor(new[] { 3.0, 5.0 })).Message);

    [Fact]
    public void A_target_outside_the_vocabulary_is_named_by_position()
    {
        var targets = torch.tensor(new long[] { 1, 1, 1, 1, 9, 1 }, [2, 3]);
        Assert.Contains("targets[1, 1]", Reject(Logits(), targets, torch.zeros(2, ScalarType.Int64), torch.tensor(new[] { 3.0, 5.0 })).Message);
    }

    [Fact]
    public void Integer_logits_are_rejected() =>
        Assert.Equal("logits", Reject(torch.ones([2, 3, 5], ScalarType.Int32), Targets(), torch.zeros(2, ScalarType.Int64), torch.tensor(new[] { 3.0, 5.0 })).ParamName);

    [Theory]
    [InlineData("RatingScale")]
    [InlineData("MinRating")]
    [InlineData("Margin")]
    [InlineData("RankingWeight")]
    [InlineData("IgnoreIndex")]
    public void Invalid_options_are_named(string option)
    {
        var o = option switch
        {
            "RatingScale" => new ContrastivePreferenceOptions { RatingScale = double.NaN },
            "MinRating" => new ContrastivePreferenceOptions { MinRating = 8 },
            "Margin" => new ContrastivePreferenceOptions { Margin = -1 },
            "RankingWeight" => new ContrastivePreferenceOptions { RankingWeight = double.PositiveInfinity },
            _ => new ContrastivePreferenceOptions { IgnoreIndex = 3 },
        };
        Assert.Equal(option, Assert.Throws<ArgumentException>(() => new ContrastivePreferenceLoss(o)).ParamName);
    }
}
