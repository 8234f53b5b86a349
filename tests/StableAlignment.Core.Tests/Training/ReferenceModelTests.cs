using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

public sealed class ReferenceModelTests
{
    private static readonly CausalLanguageModelConfig Tiny = new()
    {
        VocabSize = 23, HiddenSize = 16, IntermediateSize = 32, NumLayers = 1, NumHeads = 2, NumKeyValueHeads = 1, MaxSequenceLength = 16,
    };

    /// <summary>Summed NLL of each row's loss tokens, from the model's logits with a log-softmax written here in float64.</summary>
    private static double[] Expected(CausalLanguageModel model, PreferenceBatch batch)
    {
        using var noGrad = no_grad();
        model.eval();
        int n = (int)batch.InputIds.shape[0], t = (int)batch.InputIds.shape[1];
        double[] logits = model.forward(batch.InputIds).to(ScalarType.Float64).contiguous().data<double>().ToArray();
        long[] targets = batch.Targets.contiguous().data<long>().ToArray();
        bool[] mask = batch.LossMask.contiguous().data<bool>().ToArray();
        int v = logits.Length / (n * t);
        var sums = new double[n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < t; j++)
            {
                if (!mask[i * t + j]) continue;
                var row = logits.AsSpan((i * t + j) * v, v);
                double max = double.NegativeInfinity;
                foreach (double x in row) max = Math.Max(max, x);
                double z = 0;
                foreach (double x in row) z += Math.Exp(x - max);
                sums[i] += max + Math.Log(z) - row[(int)targets[i * t + j]];
            }
        }
        return sums;
    }

    [Fact]
    public void Reference_nlls_are_the_summed_token_nlls_of_the_frozen_model_and_are_scored_once_per_row()
    {
        using var model = new CausalLanguageModel(Tiny, seed: 4);
        using var reference = new ReferenceModel(model, ownsModel: false);
        Assert.All(model.parameters(), p => Assert.False(p.requires_grad));
        using var batch = new SyntheticPreferenceSource(tag: 1, batches: 1, groups: 3).Batches(0).Single();

        var first = reference.ResponseNll(batch).to(ScalarType.Float64).data<double>().ToArray();
        Assert.Equal(Expected(model, batch), first, (a, b) => Math.Abs(a - b) < 1e-4 * Math.Max(1, Math.Abs(b)));
        int cached = reference.CachedRows;
        Assert.Equal(9, cached);

        // The same rows in another order and padded wider (an extra, longer row) come from the cache, unchanged.
        var rows = new List<(long[] Tokens, int PromptLength, long Group, float Rating)>();
        long[] ids = batch.InputIds.data<long>().ToArray(), targets = batch.Targets.data<long>().ToArray();
        int t = (int)batch.InputIds.shape[1];
        for (int i = 8; i >= 0; i--)
        {
            int last = Enumerable.Range(0, t).Last(j => targets[i * t + j] != -100), firstTarget = Enumerable.Range(0, t).First(j => targets[i * t + j] != -100);
            rows.Add(([.. ids.Skip(i * t).Take(last + 1), targets[i * t + last]], firstTarget + 1, 0, 5f));
        }
        rows.Add(([1, 5, 6, 7, 8, 9, 10, 11, 12, 13], 3, 0, 1f));
        using var shuffled = SyntheticPreferenceSource.Create(rows, ["q"]);
        var again = reference.ResponseNll(shuffled).to(ScalarType.Float64).data<double>().ToArray();
        Assert.Equal(first.Reverse(), again.Take(9));
        Assert.Equal(cached + 1, reference.CachedRows);
    }

    [Fact]
    public void A_checkpoint_reference_loads_when_first_needed()
    {
        using var temp = new TempFolder("sa-reference-");
        using var reference = ReferenceModel.FromCheckpoint(temp.File("later"));
        using (var model = new CausalLanguageModel(Tiny, seed: 6)) model.SaveCheckpoint(temp.File("later"));
        using var batch = new SyntheticPreferenceSource(tag: 2, batches: 1).Batches(0).Single();
        using var saved = CausalLanguageModel.LoadCheckpoint(temp.File("later"));
        Assert.Equal(Expected(saved, batch), reference.ResponseNll(batch).to(ScalarType.Float64).data<double>().ToArray(),
            (a, b) => Math.Abs(a - b) < 1e-4 * Math.Max(1, Math.Abs(b)));
    }
}
