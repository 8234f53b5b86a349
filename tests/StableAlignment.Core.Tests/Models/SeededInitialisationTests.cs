using TorchSharp;
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

    /// <summary>The trainer adds adapters to a model already on its device; a seed's CPU generator must serve a GPU too.</summary>
    [TorchCudaFact]
    public void Seeded_adapters_on_a_cuda_model_get_the_same_A_as_on_the_cpu()
    {
        using var onCpu = new CausalLanguageModel(CausalLanguageModelTests.Tiny, seed: 11);
        using var onGpu = new CausalLanguageModel(CausalLanguageModelTests.Tiny, seed: 11);
        onGpu.to(CUDA);
        var options = new LoraOptions { Rank = 4, Alpha = 8 };
        onCpu.AddLoraAdapters(options, seed: 12);
        onGpu.AddLoraAdapters(options, seed: 12);
        onGpu.to(CPU);
        var expected = CausalLanguageModelTests.Weights(onCpu);
        foreach (var (name, values) in CausalLanguageModelTests.Weights(onGpu))
            Assert.True(values.SequenceEqual(expected[name]), $"{name} differs between the CPU and the GPU");
    }
}
