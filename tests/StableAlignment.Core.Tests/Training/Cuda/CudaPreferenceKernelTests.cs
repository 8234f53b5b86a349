using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using StableAlignment.Core.Training;
using StableAlignment.Core.Interop.Cuda;
using StableAlignment.Core.Tests.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training.Cuda;

/// <summary>
/// The kernels of native/cpo_kernels.cu, run through their CPU build (libcpo_emulation.so), against the float64
/// oracle: host-array path, autograd path (float32 and bfloat16), edge cases and input errors.
/// </summary>
public sealed class CudaPreferenceKernelTests
{
    private static CudaContrastivePreferenceLoss Emulated(ContrastivePreferenceOptions options, EmulatedKernelDevice? device = null) =>
        new(options, device ?? new EmulatedKernelDevice());

    private static void AssertMatchesOracle(PreferenceTestBatch batch, ContrastivePreferenceOptions options, CudaPreferenceLossOutputs got)
    {
        var want = batch.Oracle(options);
        const double rtol = Close.Fp32Rtol, atol = Close.Fp32Atol;
        Close.Equal(want.Loss, got.Loss, rtol, atol, "loss");
        Close.All(want.Nll, got.ResponseNll, rtol, atol, "nll");
        Close.All(want.Sft, got.SftTerms, rtol, atol, "sft");
        Close.All(want.Rank, got.RankingTerms, rtol, atol, "rank");
        Assert.Equal(want.BestHasLowestNll, got.BestHasLowestNll);
        Assert.NotNull(got.GradLogits);
        Close.All(want.GradLogits, got.GradLogits, rtol, atol, "grad");
    }

    [EmulatedKernelProperty(MaxTest = 40)]
    public void Host_batches_match_the_float64_oracle(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var options = PreferenceTestBatch.RandomOptions(rng);
        var batch = PreferenceTestBatch.Random(seed.Get, rng.Next(1, 7), rng.Next(1, 5), rng.Next(1, 400), explicitMask: rng.Next(2) == 0);
        using var loss = Emulated(options);
        AssertMatchesOracle(batch, options, loss.Compute(batch.ToHost()));
    }

    [EmulatedKernelTheory]
    [InlineData(1)]
    [InlineData(63)]   // less than one block
    [InlineData(65)]   // one block and one element
    [InlineData(131)]  // odd: every row but the first is unaligned, so the scalar path runs
    [InlineData(256)]  // aligned rows: the 16-byte vector path
    [InlineData(1003)] // vector body plus a scalar tail
    public void Vocabulary_sizes_that_are_not_a_multiple_of_the_block_or_vector(int v)
    {
        var options = new ContrastivePreferenceOptions { Reduction = RankingReduction.MeanOfHinges };
        var batch = PreferenceTestBatch.Random(v, 5, 3, v, explicitMask: true, groupCount: 2);
        using var loss = Emulated(options);
        AssertMatchesOracle(batch, options, loss.Compute(batch.ToHost()));
    }

    [EmulatedKernelFact]
    public void Rows_are_strided_over_a_grid_smaller_than_the_batch()
    {
        var options = new ContrastivePreferenceOptions { Reduction = RankingReduction.HingeOfMax };
        var batch = PreferenceTestBatch.Random(7, 6, 8, 97, explicitMask: false, groupCount: 3);
        using var loss = Emulated(options, new EmulatedKernelDevice(blockSize: 32, maxGridSize: 5));
        AssertMatchesOracle(batch, options, loss.Compute(batch.ToHost()));
    }

    [EmulatedKernelFact]
    public void Very_long_rows_of_256k_logits_need_no_shared_memory_of_vocabulary_size()
    {
        var options = new ContrastivePreferenceOptions();
        var batch = PreferenceTestBatch.Random(3, 2, 2, 262_144, explicitMask: true, groupCount: 1);
        using var loss = Emulated(options, new EmulatedKernelDevice(blockSize: 128));
        AssertMatchesOracle(batch, options, loss.Compute(batch.ToHost()));
    }

    [EmulatedKernelTheory]
    [InlineData(RankingReduction.HingeOfMean)]
    [InlineData(RankingReduction.MeanOfHinges)]
    [InlineData(RankingReduction.HingeOfMax)]
    public void Tied_best_responses_all_form_the_sft_term_and_groups_of_one_are_not_ranked(RankingReduction reduction)
    {
        var options = new ContrastivePreferenceOptions { Reduction = reduction, Margin = 3 };
        // group 0: two tied best (7) and one other; group 1: one response; group 2: all tied.
        var batch = PreferenceTestBatch.Random(11, 6, 4, 50, explicitMask: true) with { Groups = [0, 1, 0, 0, 2, 2], Ratings = [7, 4, 7, 2, 5, 5] };
        using var loss = Emulated(options);
        var got = loss.Compute(batch.ToHost());
        AssertMatchesOracle(batch, options, got);
        var want = batch.Oracle(options);
        Close.Equal((want.Nll[0] + want.Nll[2]) / 2, got.SftTerms[0], Close.Fp32Rtol, Close.Fp32Atol, "sft of the tied best");
        Assert.Null(got.BestHasLowestNll[1]);
        Assert.Null(got.BestHasLowestNll[2]);
        Assert.Equal(0f, got.RankingTerms[1]);
        Assert.Equal(0f, got.RankingTerms[2]);
    }

    [EmulatedKernelFact]
    public void A_worked_example_gives_the_hand_computed_loss()
    {
        // One group of two responses, one token each, V = 2 with logits (0, 0): every token NLL is ln 2.
        // SFT = ln 2, d = ln2 - ln2 + 1 * (7 - 1) / 7 = 6/7, loss = ln 2 + 0.2 * 6/7.
        var batch = new PreferenceTestBatch([0f, 0f, 0f, 0f], 2, 1, 2, [0, 1], [0, 0], [7, 1], null);
        using var loss = Emulated(new ContrastivePreferenceOptions());
        var got = loss.Compute(batch.ToHost());
        Close.Equal(Math.Log(2) + 0.2 * 6 / 7, got.Loss, 1e-6, 1e-6, "loss");
        Assert.Equal(new bool?[] { false }, got.BestHasLowestNll); // equal NLLs: not strictly lower
        // d(loss)/d(NLL_best) = 1 + 0.2, d/d(NLL_other) = -0.2; grad = coeff * (softmax - onehot).
        Close.All([1.2 * -0.5, 1.2 * 0.5, -0.2 * 0.5, -0.2 * -0.5], got.GradLogits!, 1e-6, 1e-6, "grad");
    }

    [EmulatedKernelFact]
    public void Autograd_gradient_matches_the_oracle_including_gradient_through_response_nll()
    {
        var options = new ContrastivePreferenceOptions { Reduction = RankingReduction.HingeOfMean, RankingWeight = 0.7 };
        var batch = PreferenceTestBatch.Random(21, 5, 3, 70, explicitMask: true, groupCount: 2);
        using var loss = Emulated(options);
        using var scope = NewDisposeScope();
        var logits = torch.tensor(batch.Logits, [batch.N, batch.T, batch.V]).requires_grad_();
        var mask = torch.tensor(batch.Mask!, [batch.N, batch.T]);
        using var result = loss.Compute(logits, torch.tensor(batch.Targets, [batch.N, batch.T]), torch.tensor(batch.Groups), torch.tensor(batch.Ratings), mask);
        // loss + 0.5 * sum(NLL): the NLL gradient of each response gains 0.5.
        (result.Loss + 0.5 * result.ResponseNll.sum()).backward();

        var want = batch.Oracle(options);
        Close.Equal(want.Loss, result.Loss.item<float>(), Close.Fp32Rtol, Close.Fp32Atol, "loss");
        Close.All(want.Nll, result.ResponseNll.data<float>().ToArray(), Close.Fp32Rtol, Close.Fp32Atol, "nll");
        var expected = ExpectedGradWithNllTerm(batch, want, 0.5);
        Close.All(expected, logits.grad!.data<float>().ToArray(), Close.Fp32Rtol, Close.Fp32Atol, "grad");
    }

    // grad of (loss + c * sum NLL) = oracle grad + c * dNLL_n/dlogits, with dNLL_n/dlogits = norm_n (softmax - onehot).
    private static double[] ExpectedGradWithNllTerm(PreferenceTestBatch b, OracleResult want, double c)
    {
        // With every response its own group and SFT only, the oracle's loss is mean_n NLL_n: its gradient times N is d(sum NLL).
        var ownGroups = b with { Groups = Enumerable.Range(0, b.N).Select(i => (long)i).ToArray() };
        var perResponse = ownGroups.Oracle(new ContrastivePreferenceOptions { SftOnly = true });
        return want.GradLogits.Select((x, i) => x + c * b.N * perResponse.GradLogits[i]).ToArray();
    }

    [EmulatedKernelFact]
    public void Bfloat16_tensors_match_the_oracle_within_bfloat16_tolerance()
    {
        var options = new ContrastivePreferenceOptions { Reduction = RankingReduction.MeanOfHinges };
        var batch = PreferenceTestBatch.Random(5, 4, 3, 136, explicitMask: false, groupCount: 2);
        using var loss = Emulated(options);
        using var scope = NewDisposeScope();
        var logits = torch.tensor(batch.Logits, [batch.N, batch.T, batch.V]).to_type(ScalarType.BFloat16).requires_grad_();
        using var result = loss.Compute(logits, torch.tensor(batch.Targets, [batch.N, batch.T]), torch.tensor(batch.Groups), torch.tensor(batch.Ratings));
        result.Loss.backward();

        // The oracle sees the same bfloat16-rounded logits.
        var rounded = logits.detach().to_type(ScalarType.Float32).data<float>().ToArray();
        var want = (batch with { Logits = rounded }).Oracle(options);
        Close.Equal(want.Loss, result.Loss.item<float>(), Close.Bf16Tol, Close.Bf16Tol, "loss");
        Close.All(want.Nll, result.ResponseNll.data<float>().ToArray(), Close.Bf16Tol, Close.Bf16Tol, "nll");
        Assert.Equal(ScalarType.BFloat16, logits.grad!.dtype);
        var grad = logits.grad.to_type(ScalarType.Float32).data<float>().ToArray();
        Close.All(want.GradLogits, grad, Close.Bf16Tol, 1e-3, "grad");
    }

    [EmulatedKernelFact]
    public void Float64_logits_give_float64_results_and_gradients()
    {
        var options = new ContrastivePreferenceOptions();
        var batch = PreferenceTestBatch.Random(8, 3, 2, 33, explicitMask: false, groupCount: 1);
        using var loss = Emulated(options);
        using var scope = NewDisposeScope();
        var logits = torch.tensor(batch.Logits.Select(x => (double)x).ToArray(), [batch.N, batch.T, batch.V]).requires_grad_();
        using var result = loss.Compute(logits, torch.tensor(batch.Targets, [batch.N, batch.T]), torch.tensor(batch.Groups), torch.tensor(batch.Ratings));
        result.Loss.backward();
        Assert.Equal(ScalarType.Float64, result.Loss.dtype);
        Assert.Equal(ScalarType.Float64, logits.grad!.dtype);
        Close.All(batch.Oracle(options).GradLogits, logits.grad.to_type(ScalarType.Float32).data<float>().ToArray(), Close.Fp32Rtol, Close.Fp32Atol, "grad");
    }

    [EmulatedKernelFact]
    public void A_response_with_no_token_in_the_loss_is_rejected_by_name()
    {
        var batch = PreferenceTestBatch.Random(1, 3, 2, 10, explicitMask: true);
        var mask = (bool[])batch.Mask!.Clone();
        mask[2] = mask[3] = false; // response 1
        using var loss = Emulated(new ContrastivePreferenceOptions());
        var e = Assert.Throws<ArgumentException>(() => loss.Compute((batch with { Mask = mask }).ToHost()));
        Assert.Contains("Response 1", e.Message, StringComparison.Ordinal);
    }

    [EmulatedKernelFact]
    public void A_target_outside_the_vocabulary_is_rejected_with_its_position()
    {
        var batch = PreferenceTestBatch.Random(2, 2, 3, 10, explicitMask: true);
        var targets = (long[])batch.Targets.Clone();
        var mask = (bool[])batch.Mask!.Clone();
        targets[4] = 10;
        mask[4] = true;
        using var loss = Emulated(new ContrastivePreferenceOptions());
        var e = Assert.Throws<ArgumentException>(() => loss.Compute((batch with { Targets = targets, Mask = mask }).ToHost()));
        Assert.Contains("targets[1, 1]", e.Message, StringComparison.Ordinal);
    }

    [EmulatedKernelFact]
    public void Groups_with_a_gap_and_ratings_out_of_range_are_rejected()
    {
        var batch = PreferenceTestBatch.Random(4, 3, 2, 10, explicitMask: true);
        using var loss = Emulated(new ContrastivePreferenceOptions());
        Assert.Contains("Group 1", Assert.Throws<ArgumentException>(() => loss.Compute((batch with { Groups = [0, 2, 2] }).ToHost())).Message, StringComparison.Ordinal);
        Assert.Contains("ratings[2]", Assert.Throws<ArgumentException>(() => loss.Compute((batch with { Ratings = [1, 2, 9] }).ToHost())).Message, StringComparison.Ordinal);
        Assert.Contains("Logits", Assert.Throws<ArgumentException>(() => loss.Compute(batch.ToHost() with { Vocabulary = 11 })).Message, StringComparison.Ordinal);
    }

    [EmulatedKernelFact]
    public void Every_device_allocation_is_freed_after_each_path()
    {
        var device = new EmulatedKernelDevice();
        var batch = PreferenceTestBatch.Random(9, 3, 2, 40, explicitMask: true);
        using var loss = Emulated(new ContrastivePreferenceOptions(), device);
        loss.Compute(batch.ToHost());
        Assert.Throws<ArgumentException>(() => loss.Compute((batch with { Groups = [0, 2, 2] }).ToHost()));
        using (var scope = NewDisposeScope())
        {
            var logits = torch.tensor(batch.Logits, [batch.N, batch.T, batch.V]).requires_grad_();
            using var r = loss.Compute(logits, torch.tensor(batch.Targets, [batch.N, batch.T]), torch.tensor(batch.Groups), torch.tensor(batch.Ratings), torch.tensor(batch.Mask!, [batch.N, batch.T]));
            r.Loss.backward();
        }
        Assert.Equal(0, device.LiveAllocations);
    }

    [EmulatedKernelFact]
    public void Without_a_driver_cuda_reports_why_and_the_constructor_says_so()
    {
        if (CudaContrastivePreferenceLoss.IsAvailable(out var reason))
        {
            Assert.Equal("", reason);
            return;
        }
        Assert.False(string.IsNullOrWhiteSpace(reason));
        var e = Assert.Throws<CudaException>(() => new CudaContrastivePreferenceLoss());
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }
}
