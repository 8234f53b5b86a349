using StableAlignment.Core.Models;
using StableAlignment.Core.Tests.TestSupport;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Models;

/// <summary>
/// A seed fixes a model's weights and its LoRA adapters whatever other threads draw from torch's global generator at
/// the time. The thread drawing here would disturb other classes' draws, so this class runs alone.
/// </summary>
[Collection(TorchRandomState.Name)]
public sealed class SeededInitialisationTests
{
    [Fact]
    public async Task A_seeded_model_and_its_adapters_get_the_same_weights_while_another_thread_draws_from_torchs_generator()
    {
        Dictionary<string, double[]> Build()
        {
            using var model = new CausalLanguageModel(CausalLanguageModelTests.Tiny, seed: 11);
            model.AddLoraAdapters(new LoraOptions { Rank = 4, Alpha = 8 }, seed: 12);
            return CausalLanguageModelTests.Weights(model);
        }

        var alone = Build();
        Assert.Contains(alone.Keys, k => k.EndsWith("lora_A.weight", StringComparison.Ordinal));
        using var stop = new CancellationTokenSource();
        using var drawing = new ManualResetEventSlim();
        var drawer = Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var noise = randn(256);
                drawing.Set();
            }
        }, TaskCreationOptions.LongRunning);
        try
        {
            drawing.Wait();
            for (int i = 0; i < 10; i++)
            {
                var beside = Build();
                foreach (var (name, values) in alone) Assert.True(values.SequenceEqual(beside[name]), $"{name} differs when built beside another thread's draws (try {i})");
            }
        }
        finally
        {
            stop.Cancel();
            await drawer;
        }
    }
}
