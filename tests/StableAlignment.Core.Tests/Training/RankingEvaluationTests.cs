using StableAlignment.Core.Data;
using StableAlignment.Core.Evaluation;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

public sealed class RankingEvaluationTests
{
    private sealed class FixedBatches(Func<PreferenceBatch> make) : IPreferenceBatchSource
    {
        public IEnumerable<PreferenceBatch> Batches(int epoch) { yield return make(); }

        public int? Count => 1;
    }

    /// <summary>Two queries of three responses and one of two (all tied: not rankable), random ids, masked prompts.</summary>
    private static PreferenceBatch Batch(int vocab, int seed)
    {
        var rng = new Random(seed);
        const int n = 8, t = 6;
        var ids = new long[n * t];
        var mask = new bool[n * t];
        var targets = new long[n * t];
        for (int k = 0; k < ids.Length; k++) ids[k] = rng.Next(vocab);
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < t; j++)
            {
                mask[i * t + j] = j >= 2 && j < t - 1;
                targets[i * t + j] = mask[i * t + j] ? ids[i * t + j + 1] : -100;
            }
        }
        return new PreferenceBatch
        {
            InputIds = torch.tensor(ids, [n, t]),
            Targets = torch.tensor(targets, [n, t]),
            LossMask = torch.tensor(mask, [n, t]),
            Groups = torch.tensor(new long[] { 0, 0, 0, 1, 1, 1, 2, 2 }),
            Ratings = torch.tensor(new float[] { 2, 6, 4, 7, 7, 1, 5, 5 }),
            Queries = ["q-a", "q-b", "q-c"],
            PaddingTokens = 0,
        };
    }

    [Fact]
    public void Items_are_the_rankable_queries_and_acc_is_best_has_strictly_lowest_nll()
    {
        using var model = new CausalLanguageModel(new CausalLanguageModelConfig { VocabSize = 23, HiddenSize = 16, IntermediateSize = 32, NumLayers = 1, NumHeads = 2, NumKeyValueHeads = 1, MaxSequenceLength = 16 }, seed: 3);
        model.eval();
        var results = RankingEvaluation.Evaluate("tiny", model, new FixedBatches(() => Batch(23, 9)));

        // Independent NLLs: float64 log-softmax of the model's logits, summed by hand over the masked positions.
        using var batch = Batch(23, 9);
        double[] logp;
        using (torch.no_grad())
            logp = torch.nn.functional.log_softmax(model.call(batch.InputIds).to(ScalarType.Float64), -1).data<double>().ToArray();
        var targets = batch.Targets.data<long>().ToArray();
        var mask = batch.LossMask.data<bool>().ToArray();
        var nll = new double[8];
        for (int i = 0; i < 8; i++)
        {
            int count = 0;
            for (int j = 0; j < 6; j++)
            {
                if (!mask[i * 6 + j]) continue;
                nll[i] -= logp[((i * 6) + j) * 23 + (int)targets[i * 6 + j]];
                count++;
            }
            nll[i] /= count;
        }

        Assert.Equal(["q-a", "q-b"], results.Items.Select(i => i.Id));
        Assert.Equal(nll[1] < Math.Min(nll[0], nll[2]), results.Items[0].Metrics.Accuracy);
        Assert.Equal(Math.Min(nll[3], nll[4]) < nll[5], results.Items[1].Metrics.Accuracy);
        Assert.Equal([false, true, false], results.Items[0].Labels);
        for (int k = 0; k < 3; k++) Assert.True(Math.Abs(-nll[k] - results.Items[0].LogLikelihoods[k]) < 1e-5, $"response {k}");
    }

    [Fact]
    public void A_source_without_a_rankable_query_is_rejected()
    {
        using var model = new CausalLanguageModel(new CausalLanguageModelConfig { VocabSize = 23, HiddenSize = 16, IntermediateSize = 32, NumLayers = 1, NumHeads = 2, NumKeyValueHeads = 1, MaxSequenceLength = 16 }, seed: 3);
        var tied = new FixedBatches(() =>
        {
            var b = Batch(23, 1);
            return new PreferenceBatch { InputIds = b.InputIds, Targets = b.Targets, LossMask = b.LossMask, Groups = b.Groups, Ratings = torch.full(8, 5f), Queries = b.Queries, PaddingTokens = 0 };
        });
        Assert.Throws<ArgumentException>(() => RankingEvaluation.Evaluate("tiny", model, tied));
    }
}
