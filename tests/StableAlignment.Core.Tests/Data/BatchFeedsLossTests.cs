using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;
using TorchSharp;

namespace StableAlignment.Core.Tests.Data;

public class BatchFeedsLossTests
{
    [Fact]
    public void Loss_accepts_batches_and_mask_agrees_with_ignore_index()
    {
        var ds = AlignmentDataset.FromInteractions([CashRegisterExample.Record(), CashRegisterExample.Record(question: "Is it fine to lie to a friend?")],
            new AlignmentDatasetOptions { Mix = null });
        var batcher = ds.CreateBatcher(ModelTokenizers.Gpt2(), new PreferenceBatchOptions { MaxLength = 40, GroupsPerBatch = 10 });
        using var batch = batcher.Batches().Single();
        long n = batch.InputIds.shape[0], t = batch.InputIds.shape[1], v = 50257;
        using var gen = new torch.Generator(7);
        using var logits = torch.randn([n, t, v], dtype: torch.float64, generator: gen);
        var loss = new ContrastivePreferenceLoss();

        using var withMask = loss.Compute(logits, batch.Targets, batch.Groups, batch.Ratings, batch.LossMask);
        using var withIgnore = loss.Compute(logits, batch.Targets, batch.Groups, batch.Ratings);
        Assert.Equal(withMask.Loss.item<double>(), withIgnore.Loss.item<double>(), 12);
        Assert.True(double.IsFinite(withMask.Loss.item<double>()));

        // Oracle: each row's NLL as the plain mean of -log softmax(logits)[target] over the masked positions.
        var targets = batch.Targets.data<long>().ToArray();
        var mask = batch.LossMask.data<bool>().ToArray();
        using var logProbs = torch.nn.functional.log_softmax(logits, 2);
        var nll = withMask.ResponseNll.data<double>().ToArray();
        for (int row = 0; row < n; row++)
        {
            double sum = 0;
            int count = 0;
            for (int pos = 0; pos < t; pos++)
            {
                if (!mask[(row * t) + pos])
                    continue;
                sum -= logProbs[row, pos, targets[(row * t) + pos]].item<double>();
                count++;
            }
            Assert.Equal(sum / count, nll[row], 9);
        }
    }
}
