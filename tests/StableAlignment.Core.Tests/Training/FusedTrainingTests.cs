using System.Globalization;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Training;

/// <summary>
/// The trainer's fused output layer and activation checkpointing: fused training reaches the weights of unfused
/// training; checkpointed gradients are those of the run without it.
/// </summary>
public sealed class FusedTrainingTests
{
    private static readonly CausalLanguageModelConfig Tiny = new()
    {
        VocabSize = 23, HiddenSize = 16, IntermediateSize = 32, NumLayers = 2, NumHeads = 2, NumKeyValueHeads = 1, MaxSequenceLength = 16,
    };

    private static TrainerOptions Fast => new() { LearningRate = 1e-2, WarmupRatio = 0.1, ValidateEverySteps = 0 };

    private static IReadOnlyList<TrainingStage> Stages() =>
    [
        new() { Name = "imitation", Train = new SyntheticPreferenceSource(1, 3, groups: 3), Validation = new SyntheticPreferenceSource(1, 1, seed: 5) },
        new() { Name = "self-critic", Train = new SyntheticPreferenceSource(2, 2, groups: 2), Objective = TrainingObjective.Sft },
    ];

    private static float[][] Weights(CausalLanguageModel model) =>
        model.parameters().Select(p => p.detach().contiguous().data<float>().ToArray()).ToArray();

    private static void AssertClose(float[][] expected, float[][] actual, double rtol, double atol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            for (var j = 0; j < expected[i].Length; j++)
                Assert.True(Math.Abs(expected[i][j] - actual[i][j]) <= atol + rtol * Math.Abs(expected[i][j]),
                    $"parameter {i}[{j}]: {expected[i][j]} vs {actual[i][j]}");
    }

    [Theory]
    [InlineData(true)]  // tied embedding as the output layer
    [InlineData(false)] // its own lm_head
    public void Fused_training_reaches_the_weights_and_figures_of_unfused_training(bool tied)
    {
        var config = Tiny with { TieWordEmbeddings = tied };
        using var fusedModel = new CausalLanguageModel(config, seed: 4);
        using var unfusedModel = new CausalLanguageModel(config, seed: 4);
        using var fused = new StableAlignmentTrainer(fusedModel, Fast);
        using var unfused = new StableAlignmentTrainer(unfusedModel, Fast with { FusedOutputLoss = false });
        Assert.True(fused.FusedOutputLoss);
        Assert.False(unfused.FusedOutputLoss);

        var a = fused.Train(Stages());
        var b = unfused.Train(Stages());

        // AdamW divides by the gradients' root mean square, so float32 rounding grows over the steps; one step's
        // gradients are compared tightly below.
        AssertClose(Weights(unfusedModel), Weights(fusedModel), 1e-3, 1e-5);
        Assert.Equal(b.Steps.Count, a.Steps.Count);
        for (var i = 0; i < a.Steps.Count; i++)
        {
            Assert.Equal(b.Steps[i].Loss, a.Steps[i].Loss, 4);
            Assert.Equal(b.Steps[i].GradientNorm, a.Steps[i].GradientNorm, 4);
        }
        Assert.Equal(b.Stages[0].FinalValidation!.Loss, a.Stages[0].FinalValidation!.Loss, 4);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Fused_gradients_of_a_batch_equal_unfused_ones_within_float32_tolerance(bool tied)
    {
        using var model = new CausalLanguageModel(Tiny with { TieWordEmbeddings = tied }, seed: 9);
        using var batch = new SyntheticPreferenceSource(3, 1, groups: 4).Batches(0).Single();
        using var loss = new ContrastivePreferenceLoss { FusedChunkRows = 7 };

        float[][] Gradients(bool fused)
        {
            model.zero_grad();
            using var scope = NewDisposeScope();
            using var result = fused
                ? loss.ComputeFromHidden(model.HiddenStates(batch.InputIds), model.OutputWeight!, batch.Targets, batch.Groups, batch.Ratings, batch.LossMask)
                : loss.Compute(model.forward(batch.InputIds), batch.Targets, batch.Groups, batch.Ratings, batch.LossMask);
            result.Loss.backward();
            return model.parameters().Select(p => p.grad!.contiguous().data<float>().ToArray()).ToArray();
        }

        AssertClose(Gradients(fused: false), Gradients(fused: true), 1e-4, 1e-7);
    }

    [Fact]
    public void A_loss_from_a_factory_is_not_fused_and_an_unfusable_output_layer_falls_back()
    {
        using var model = new CausalLanguageModel(Tiny, seed: 1);
        using var custom = new StableAlignmentTrainer(model, Fast with { LossFactory = o => new RecordingLoss(new ContrastivePreferenceLoss(o), []) });
        Assert.False(custom.FusedOutputLoss);
        using var library = new StableAlignmentTrainer(model, Fast with { LossFactory = o => new ContrastivePreferenceLoss(o) });
        Assert.True(library.FusedOutputLoss);
        Assert.NotNull(model.OutputWeight);
    }

    [Fact]
    public void Checkpointed_layers_give_the_gradients_of_the_run_without_checkpointing()
    {
        using var model = new CausalLanguageModel(Tiny, seed: 6);
        using var batch = new SyntheticPreferenceSource(1, 1, groups: 3).Batches(0).Single();
        using var loss = new ContrastivePreferenceLoss();

        float[][] Gradients(bool checkpoint, bool frozenEmbedding)
        {
            model.ActivationCheckpointing = checkpoint;
            model.zero_grad();
            foreach (var (name, p) in model.named_parameters())
                p.requires_grad_(!(frozenEmbedding && name.Contains("embed_tokens", StringComparison.Ordinal)));
            using var scope = NewDisposeScope();
            using var result = loss.Compute(model.forward(batch.InputIds), batch.Targets, batch.Groups, batch.Ratings, batch.LossMask);
            result.Loss.backward();
            return model.parameters().Select(p => p.grad is null ? [] : p.grad.contiguous().data<float>().ToArray()).ToArray();
        }

        foreach (var frozen in new[] { false, true })
        {
            var plain = Gradients(checkpoint: false, frozen);
            var checkpointed = Gradients(checkpoint: true, frozen);
            // With the embedding frozen the first layer's input needs no gradient: the layers' own must still arrive.
            Assert.Contains(checkpointed, g => g.Length > 0);
            AssertClose(plain, checkpointed, 1e-6, 1e-8);
        }
        model.ActivationCheckpointing = false;
    }

    [Fact]
    public void Checkpointed_lora_layers_with_dropout_recompute_the_same_masks()
    {
        using var model = new CausalLanguageModel(Tiny, seed: 9);
        model.AddLoraAdapters(new LoraOptions { Rank = 4, Dropout = 0.5 }, seed: 1);
        using (no_grad())
        {
            // B starts at zero; made non-zero so the masks reach the output and A's gradient too.
            foreach (var (name, p) in model.named_parameters())
                if (name.Contains("lora_B", StringComparison.Ordinal)) p.normal_(0, 0.1);
        }
        model.train();
        using var batch = new SyntheticPreferenceSource(1, 1, groups: 3).Batches(0).Single();
        using var loss = new ContrastivePreferenceLoss();

        float[][] Gradients(bool checkpoint, long seed)
        {
            model.ActivationCheckpointing = checkpoint;
            model.zero_grad();
            torch.manual_seed(seed);
            using var scope = NewDisposeScope();
            using var result = loss.Compute(model.forward(batch.InputIds), batch.Targets, batch.Groups, batch.Ratings, batch.LossMask);
            result.Loss.backward();
            return model.parameters().Where(p => p.requires_grad).Select(p => p.grad!.contiguous().data<float>().ToArray()).ToArray();
        }

        var plain = Gradients(checkpoint: false, seed: 42);
        var otherMasks = Gradients(checkpoint: false, seed: 43);
        Assert.Contains(Enumerable.Range(0, plain.Length), i => !plain[i].SequenceEqual(otherMasks[i])); // the masks matter
        AssertClose(plain, Gradients(checkpoint: true, seed: 42), 1e-6, 1e-8);
        model.ActivationCheckpointing = false;
    }

    [Fact]
    public void Training_with_activation_checkpointing_reaches_the_same_weights()
    {
        using var plainModel = new CausalLanguageModel(Tiny, seed: 7);
        using var checkpointedModel = new CausalLanguageModel(Tiny, seed: 7);
        using (var plain = new StableAlignmentTrainer(plainModel, Fast)) plain.Train(Stages());
        using (var checkpointed = new StableAlignmentTrainer(checkpointedModel, Fast with { ActivationCheckpointing = true }))
            checkpointed.Train(Stages());
        AssertClose(Weights(plainModel), Weights(checkpointedModel), 1e-5, 1e-7);
        Assert.False(checkpointedModel.ActivationCheckpointing); // restored after the run
    }
}
