using System.Text.Json.Nodes;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Models;

[Collection(TorchRandomState.Name)]
public class LoraTests(ITestOutputHelper output)
{
    private static readonly CausalLanguageModelConfig Tiny = CausalLanguageModelTests.Tiny with { AttentionBias = true, AttentionOutputBias = true, MlpBias = true };

    private static readonly long[] Tokens = [3, 17, 5, 5, 22, 0, 9, 14];

    private static float[] Logits(CausalLanguageModel model)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.eval();
        return model.forward(tensor(Tokens, dtype: ScalarType.Int64).unsqueeze(0)).contiguous().data<float>().ToArray();
    }

    /// <summary>Gives every adapter matrix random values, so the adapters change the logits.</summary>
    internal static void Randomize(CausalLanguageModel model, int seed)
    {
        using var noGrad = no_grad();
        var generator = new Generator((ulong)seed);
        foreach (var (name, p) in model.named_parameters().Where(np => np.name.Contains(".lora_", StringComparison.Ordinal)))
            p.copy_(randn(p.shape, generator: generator) * 0.05);
    }

    private static CausalLanguageModel WithRandomBiases(int seed)
    {
        var model = new CausalLanguageModel(Tiny, seed);
        using var noGrad = no_grad();
        foreach (var (_, p) in model.named_parameters().Where(np => np.name.EndsWith(".bias", StringComparison.Ordinal))) p.copy_(randn_like(p) * 0.1);
        return model;
    }

    [Fact]
    public void A_new_adapter_changes_no_logit()
    {
        using var model = WithRandomBiases(1);
        var before = Logits(model);
        model.AddLoraAdapters(new LoraOptions { Rank = 4, Alpha = 8 }, seed: 5);
        Assert.Equal(before, Logits(model));
        Assert.Equal(14, model.LoraLayers().Count); // 7 projections x 2 layers
        Assert.All(model.LoraLayers(), l => Assert.Equal(0f, l.Layer.B.abs().max().item<float>()));
        Assert.All(model.LoraLayers(), l => Assert.True(l.Layer.A.abs().max().item<float>() > 0, "A is Kaiming-uniform, not zero"));
    }

    [Fact]
    public void Adapters_added_to_a_model_in_eval_mode_apply_no_dropout()
    {
        using var model = WithRandomBiases(10);
        model.eval();
        model.AddLoraAdapters(new LoraOptions { Rank = 4, Dropout = 0.5 }, seed: 1);
        Randomize(model, 2);
        using var ids = tensor(Tokens, dtype: ScalarType.Int64).unsqueeze(0);
        using var first = model.forward(ids);
        using var second = model.forward(ids);
        Assert.True(allclose(first, second, rtol: 0, atol: 0), "eval mode is deterministic");
        model.train();
        using var third = model.forward(ids);
        Assert.False(allclose(first, third, rtol: 0, atol: 1e-6), "training mode drops adapter inputs");
    }

    [Fact]
    public void The_update_is_scaled_by_alpha_over_r_or_alpha_over_sqrt_r_with_rsLoRA()
    {
        foreach (var rs in new[] { false, true })
        {
            using var model = WithRandomBiases(2);
            var options = new LoraOptions { Rank = 4, Alpha = 6, TargetModules = ["v_proj"], UseRsLora = rs, Dropout = 0 };
            model.AddLoraAdapters(options, seed: 3);
            Randomize(model, 4);
            var (_, layer) = model.LoraLayers()[0];
            using var x = randn(3, Tiny.HiddenSize);
            using var y = layer.forward(x);
            // y = W x + b + s B A x with s = alpha / r (or alpha / sqrt r), in float64 by hand.
            double s = rs ? 6 / Math.Sqrt(4) : 6.0 / 4;
            using var expected = x.to_type(ScalarType.Float64).matmul(layer.BaseWeight.to_type(ScalarType.Float64).t()) + layer.BaseBias!.to_type(ScalarType.Float64)
                + s * x.to_type(ScalarType.Float64).matmul(layer.A.to_type(ScalarType.Float64).t()).matmul(layer.B.to_type(ScalarType.Float64).t());
            Assert.True(allclose(y.to_type(ScalarType.Float64), expected, rtol: 1e-5, atol: 1e-6), $"rsLoRA {rs}");
            Assert.Equal(s, options.Scaling);
        }
    }

    [Fact]
    public void Merged_and_unmerged_logits_agree_to_1e_5()
    {
        using var model = WithRandomBiases(3);
        model.AddLoraAdapters(new LoraOptions { Rank = 4, Alpha = 16 }, seed: 1);
        Randomize(model, 2);
        var unmerged = Logits(model);
        model.MergeAdapters();
        Assert.Null(model.Lora);
        Assert.Empty(model.LoraLayers());
        var merged = Logits(model);
        Assert.Equal(unmerged.Length, merged.Length);
        Assert.True(unmerged.Zip(merged).Max(p => Math.Abs(p.First - p.Second)) <= 1e-5);
        Assert.Equal(model.ParameterCount, model.TrainableParameterCount); // a plain model again
        Assert.True(unmerged.Zip(Logits(WithRandomBiases(3))).Max(p => Math.Abs(p.First - p.Second)) > 1e-3, "the adapters did change the model");
    }

    [Fact]
    public void After_one_training_step_only_adapter_tensors_have_changed_and_only_they_get_optimiser_state()
    {
        using var model = WithRandomBiases(4);
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using var temp = new TempFolder("sa-lora-");
        var options = new TrainerOptions { LearningRate = 1e-2, ValidateEverySteps = 0, Lora = new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0 }, LoraSeed = 9, CheckpointDirectory = temp.Path };
        using (var trainer = new StableAlignmentTrainer(model, options))
            trainer.Train([new TrainingStage { Name = "imitation", Train = new SyntheticPreferenceSource(1, batches: 1, groups: 2), Epochs = 1 }]);

        var after = model.state_dict();
        foreach (var (name, value) in before)
            Assert.True(allclose(value, after[name], rtol: 0, atol: 0), $"base tensor {name} changed");
        var adapters = after.Keys.Except(before.Keys).ToList();
        Assert.Equal(2 * 14, adapters.Count);
        Assert.Contains(adapters, n => n.EndsWith("lora_B.weight", StringComparison.Ordinal) && after[n].abs().max().item<float>() > 0);

        long adapterScalars = adapters.Sum(n => after[n].numel());
        Assert.Equal(adapterScalars, model.TrainableParameterCount);
        // AdamW keeps two moments per trained scalar: the optimiser file is about 8 bytes per adapter scalar, far
        // below what the frozen base would need.
        long optimiserBytes = new FileInfo(Path.Combine(temp.Path, "optimizer.bin")).Length;
        Assert.InRange(optimiserBytes, 8 * adapterScalars, 8 * adapterScalars + 64 * 1024);
        Assert.False(File.Exists(Path.Combine(temp.Path, "model.bin")), "a LoRA checkpoint holds the adapter only");
        foreach (var t in before.Values) t.Dispose();
    }

    [Fact]
    public void The_saved_adapter_has_PEFT_key_names_shapes_and_dtypes()
    {
        using var model = new CausalLanguageModel(Tiny, seed: 5);
        var options = new LoraOptions { Rank = 3, Alpha = 12, Dropout = 0.1, TargetModules = ["q_proj", "v_proj", "down_proj"], UseRsLora = true };
        model.AddLoraAdapters(options, seed: 1);
        using var temp = new TempFolder("sa-lora-");
        foreach (var (dtype, name) in new[] { (ExportDType.F32, "F32"), (ExportDType.BF16, "BF16"), (ExportDType.F16, "F16") })
        {
            var dir = Path.Combine(temp.Path, name);
            model.SaveLoraAdapter(dir, dtype, "HuggingFaceTB/SmolLM2-135M-Instruct");
            var (tensors, metadata) = SafetensorsTestFile.Read(Path.Combine(dir, "adapter_model.safetensors"));
            Assert.Equal("pt", metadata["format"]);
            var expected = new Dictionary<string, long[]>();
            for (int l = 0; l < Tiny.NumLayers; l++)
            {
                var p = $"base_model.model.model.layers.{l}.";
                expected[p + "self_attn.q_proj.lora_A.weight"] = [3, Tiny.HiddenSize];
                expected[p + "self_attn.q_proj.lora_B.weight"] = [Tiny.NumHeads * Tiny.HeadDim, 3];
                expected[p + "self_attn.v_proj.lora_A.weight"] = [3, Tiny.HiddenSize];
                expected[p + "self_attn.v_proj.lora_B.weight"] = [Tiny.NumKeyValueHeads * Tiny.HeadDim, 3];
                expected[p + "mlp.down_proj.lora_A.weight"] = [3, Tiny.IntermediateSize];
                expected[p + "mlp.down_proj.lora_B.weight"] = [Tiny.HiddenSize, 3];
            }
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), tensors.Keys.Order(StringComparer.Ordinal));
            foreach (var (key, shape) in expected)
            {
                Assert.Equal(shape, tensors[key].Shape);
                Assert.Equal(name, tensors[key].DType);
            }

            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")))!.AsObject();
            Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
            Assert.Equal("CAUSAL_LM", config["task_type"]!.GetValue<string>());
            Assert.Equal(3, config["r"]!.GetValue<int>());
            Assert.Equal(12.0, config["lora_alpha"]!.GetValue<double>());
            Assert.Equal(0.1, config["lora_dropout"]!.GetValue<double>());
            Assert.Equal(["q_proj", "v_proj", "down_proj"], config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()));
            Assert.Equal("none", config["bias"]!.GetValue<string>());
            Assert.True(config["use_rslora"]!.GetValue<bool>());
            Assert.Equal("HuggingFaceTB/SmolLM2-135M-Instruct", config["base_model_name_or_path"]!.GetValue<string>());
        }
    }

    [Fact]
    public void A_PEFT_folder_loads_onto_a_fresh_base_and_reproduces_the_adapted_logits()
    {
        using var temp = new TempFolder("sa-lora-");
        float[] adapted;
        using (var model = WithRandomBiases(6))
        {
            model.SaveCheckpoint(temp.File("base"));
            model.AddLoraAdapters(new LoraOptions { Rank = 2, Alpha = 4, TargetModules = ["k_proj", "o_proj", "gate_proj"] }, seed: 2);
            Randomize(model, 3);
            adapted = Logits(model);
            model.SaveLoraAdapter(temp.File("adapter"));
        }
        using var fresh = CausalLanguageModel.LoadCheckpoint(temp.File("base"));
        fresh.LoadLoraAdapter(temp.File("adapter"));
        Assert.Equal(adapted, Logits(fresh));
        Assert.Equal(2, fresh.Lora!.Rank);
    }

    [Fact]
    public void A_LoRA_model_checkpoint_holds_the_base_and_the_adapter_and_loads_back_adapted()
    {
        using var temp = new TempFolder("sa-lora-");
        using var model = WithRandomBiases(7);
        model.AddLoraAdapters(new LoraOptions { Rank = 2 }, seed: 2);
        Randomize(model, 5);
        model.SaveCheckpoint(temp.Path);
        Assert.True(File.Exists(temp.File("adapter_model.safetensors")));
        using var loaded = CausalLanguageModel.LoadCheckpoint(temp.Path);
        Assert.NotNull(loaded.Lora);
        Assert.Equal(Logits(model), Logits(loaded));
    }

    [Fact]
    public void An_adapter_file_with_a_missing_or_foreign_tensor_is_refused_by_name()
    {
        using var temp = new TempFolder("sa-lora-");
        using var model = new CausalLanguageModel(Tiny, seed: 8);
        model.AddLoraAdapters(new LoraOptions { Rank = 2, TargetModules = ["q_proj"] }, seed: 1);
        model.SaveLoraAdapter(temp.Path);
        var (tensors, _) = SafetensorsTestFile.Read(temp.File("adapter_model.safetensors"));
        var entries = tensors.ToDictionary(kv => kv.Key, kv => (kv.Value.Shape, kv.Value.Values));
        entries.Remove("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight");
        SafetensorsTestFile.Write(temp.File("adapter_model.safetensors"), entries);
        using var other = new CausalLanguageModel(Tiny, seed: 8);
        var ex = Assert.Throws<InvalidDataException>(() => other.LoadLoraAdapter(temp.Path));
        Assert.Contains("layers.1.self_attn.q_proj.lora_B.weight", ex.Message, StringComparison.Ordinal);

        entries["base_model.model.lm_head.lora_A.weight"] = ([2L, 16L], new double[32]);
        entries["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"] = ([16L, 2L], new double[32]);
        SafetensorsTestFile.Write(temp.File("adapter_model.safetensors"), entries);
        using var third = new CausalLanguageModel(Tiny, seed: 8);
        ex = Assert.Throws<InvalidDataException>(() => third.LoadLoraAdapter(temp.Path));
        Assert.Contains("lm_head.lora_A.weight", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_base_held_in_bfloat16_halves_its_memory_and_computes_with_the_rounded_weights()
    {
        using var model = WithRandomBiases(9);
        using var rounded = WithRandomBiases(9);
        using (no_grad())
            foreach (var (name, p) in rounded.named_parameters().Where(np => np.name.Contains("_proj.weight", StringComparison.Ordinal)))
                p.copy_(p.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32));
        long before = model.parameters().Sum(p => p.numel() * p.ElementSize);
        model.AddLoraAdapters(new LoraOptions { Rank = 2, StoreBaseInBFloat16 = true }, seed: 1);
        Assert.All(model.LoraLayers(), l => Assert.Equal(ScalarType.BFloat16, l.Layer.BaseWeight.dtype));
        long projections = model.LoraLayers().Sum(l => l.Layer.BaseWeight.numel());
        long adapters = model.TrainableParameterCount;
        Assert.Equal(before - 2 * projections + 4 * adapters, model.parameters().Sum(p => p.numel() * p.ElementSize));
        Assert.Equal(Logits(rounded), Logits(model));
    }

    [Fact]
    public void A_LoRA_run_resumed_from_its_checkpoint_reaches_the_same_adapter_as_an_uninterrupted_one()
    {
        static IReadOnlyList<TrainingStage> Stages() =>
        [
            new() { Name = "imitation", Train = new SyntheticPreferenceSource(1, 3), Epochs = 2 },
            new() { Name = "self-critic", Train = new SyntheticPreferenceSource(2, 2), Objective = TrainingObjective.Sft },
        ];
        var options = new TrainerOptions { LearningRate = 1e-2, ValidateEverySteps = 0, Lora = new LoraOptions { Rank = 2, Dropout = 0 }, LoraSeed = 4 };
        using var reference = new CausalLanguageModel(CausalLanguageModelTests.Tiny, seed: 3);
        using (var trainer = new StableAlignmentTrainer(reference, options)) trainer.Train(Stages());

        using var temp = new TempFolder("sa-lora-resume-");
        using var cts = new CancellationTokenSource();
        using (var interrupted = new CausalLanguageModel(CausalLanguageModelTests.Tiny, seed: 3))
        using (var trainer = new StableAlignmentTrainer(interrupted, options with { CheckpointDirectory = temp.Path }))
        {
            var stop = new Progress(p => { if (p.Step?.Position.GlobalStep == 4) cts.Cancel(); });
            Assert.Throws<OperationCanceledException>(() => trainer.Train(Stages(), stop, cts.Token));
        }
        // The same base (the user rebuilds it), a differently initialised adapter: everything else comes from the checkpoint.
        using var resumed = new CausalLanguageModel(CausalLanguageModelTests.Tiny, seed: 3);
        using (var trainer = new StableAlignmentTrainer(resumed, options with { CheckpointDirectory = temp.Path, LoraSeed = 77 }))
        {
            trainer.LoadCheckpoint(temp.Path);
            trainer.Train(Stages());
        }
        var expected = reference.state_dict();
        foreach (var (name, actual) in resumed.state_dict())
            Assert.True(allclose(expected[name], actual, rtol: 1e-5, atol: 1e-6), $"{name} differs after resuming");
    }

    private sealed class Progress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport(value);
    }

    public static TheoryData<Func<LoraOptions, LoraOptions>, string> BadOptions => new()
    {
        { o => o with { Rank = 0 }, "Rank must be positive, got 0" },
        { o => o with { Alpha = -1 }, "Alpha must be a positive finite number, got -1" },
        { o => o with { Dropout = 1 }, "Dropout must be in [0, 1), got 1" },
        { o => o with { TargetModules = ["q_proj", "lm_head"] }, "'lm_head'" },
        { o => o with { TargetModules = ["q_proj", "q_proj"] }, "names 'q_proj' twice" },
        { o => o with { TargetModules = [] }, "at least one" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Invalid_options_name_the_bad_value(Func<LoraOptions, LoraOptions> change, string expected)
    {
        var ex = Assert.Throws<ArgumentException>(() => change(new LoraOptions()).Validate());
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_command_line_form_parses_and_names_a_bad_setting()
    {
        var options = LoraOptions.Parse("r=8, alpha=16,dropout=0.1,targets=q_proj+v_proj,rslora=true");
        Assert.Equal((8, 16.0, 0.1, true), (options.Rank, options.Alpha, options.Dropout, options.UseRsLora));
        Assert.Equal(["q_proj", "v_proj"], options.TargetModules);
        Assert.Equal(new LoraOptions().Rank, LoraOptions.Parse("").Rank);
        Assert.Contains("'rank2'", Assert.Throws<ArgumentException>(() => LoraOptions.Parse("rank2=3")).Message, StringComparison.Ordinal);
        Assert.Contains("'x' is not a valid value for r", Assert.Throws<ArgumentException>(() => LoraOptions.Parse("r=x")).Message, StringComparison.Ordinal);
        Assert.Contains("Rank must be positive", Assert.Throws<ArgumentException>(() => LoraOptions.Parse("r=0")).Message, StringComparison.Ordinal);
    }

    /// <summary>The figures docs/models.md quotes: a rank-16 adapter on every projection of the default run's model.</summary>
    [Fact]
    public void Adapter_size_against_the_full_model_at_the_default_run_shape()
    {
        var config = new CausalLanguageModelConfig { VocabSize = 2679, MaxSequenceLength = 192 };
        using var model = new CausalLanguageModel(config, seed: 1);
        long full = model.ParameterCount;
        model.AddLoraAdapters(new LoraOptions(), seed: 1);
        long adapter = model.TrainableParameterCount;
        // Per layer: r (in + out) for q, k, v, o (128+128, 128+64, 128+64, 128+128) and gate, up, down (128+352 each).
        Assert.Equal(2 * 16 * (256 + 192 + 192 + 256 + 3 * 480), adapter);
        using var temp = new TempFolder("sa-lora-size-");
        model.SaveLoraAdapter(temp.File("adapter"));
        model.MergeAdapters();
        model.SaveHuggingFace(temp.File("full"));
        long adapterBytes = new FileInfo(Path.Combine(temp.File("adapter"), "adapter_model.safetensors")).Length;
        long fullBytes = new FileInfo(Path.Combine(temp.File("full"), "model.safetensors")).Length;
        output.WriteLine($"adapter {adapter:N0} parameters ({100.0 * adapter / full:F1}% of {full:N0}); adapter_model.safetensors {adapterBytes:N0} bytes, model.safetensors {fullBytes:N0} bytes (f32)");
        Assert.InRange(adapterBytes, 4 * adapter, 4 * adapter + 16 * 1024);
        Assert.InRange(fullBytes, 4 * full, 4 * full + 16 * 1024);
    }
}
