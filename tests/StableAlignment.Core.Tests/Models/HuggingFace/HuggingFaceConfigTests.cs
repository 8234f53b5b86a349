using System.Text.Json;
using System.Text.Json.Nodes;
using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Models;

/// <summary>
/// The loader must not guess: every setting of <c>config.json</c> that changes the forward pass either reproduces a
/// float64 forward pass written here from transformers' rules, or is refused by name.
/// </summary>
[Collection(TorchRandomState.Name)]
public class HuggingFaceConfigTests
{
    private const int Positions = 40;

    private static JsonObject BaseConfig(string modelType = "llama") => new()
    {
        ["model_type"] = modelType, ["vocab_size"] = 23, ["hidden_size"] = 16, ["intermediate_size"] = 24,
        ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2,
        ["max_position_embeddings"] = 64, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = false,
    };

    /// <summary>transformers' inverse frequencies (<c>modeling_rope_utils.py</c>: default, linear, llama3), written out here.</summary>
    private static Func<int, double> TransformersInverseFrequency(JsonObject config, int headDim)
    {
        double theta = config["rope_theta"]!.GetValue<double>();
        double Default(int i) => 1.0 / Math.Pow(theta, 2.0 * i / headDim);
        if (config["rope_scaling"] is not JsonObject scaling) return Default;
        double factor = scaling["factor"]!.GetValue<double>();
        if ((scaling["rope_type"] ?? scaling["type"])!.GetValue<string>() == "linear") return i => Default(i) / factor;
        double low = scaling["low_freq_factor"]!.GetValue<double>(), high = scaling["high_freq_factor"]!.GetValue<double>();
        double old = scaling["original_max_position_embeddings"]!.GetValue<double>();
        return i =>
        {
            double inv = Default(i), wavelen = 2 * Math.PI / inv;
            double llama = wavelen > old / low ? inv / factor : inv;
            double smooth = (old / wavelen - low) / (high - low);
            bool medium = !(wavelen < old / high) && !(wavelen > old / low);
            return medium ? (1 - smooth) * llama / factor + smooth * llama : llama;
        };
    }

    public static TheoryData<string, string> SupportedSettings => new()
    {
        { "llama", """{"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}""" },
        { "llama", """{"rope_scaling": {"type": "linear", "factor": 4.0}}""" },
        { "llama", """{"head_dim": 6, "hidden_act": "silu"}""" },
        { "llama", """{"attention_bias": true, "mlp_bias": true}""" },
        { "qwen2", """{"use_sliding_window": false, "sliding_window": 32, "attention_dropout": 0.0}""" },
        { "mistral", """{"sliding_window": null, "head_dim": 4}""" },
        { "llama", """{"rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8}}""" },
    };

    [Theory]
    [MemberData(nameof(SupportedSettings))]
    public void Every_supported_setting_reproduces_transformers_semantics_past_the_low_frequency_wavelength(string modelType, string overrides)
    {
        var json = BaseConfig(modelType);
        foreach (var (key, value) in JsonNode.Parse(overrides)!.AsObject()) json[key] = value?.DeepClone();
        // transformers 5's layout keeps theta and the scaling together in rope_parameters, with no top-level rope_theta.
        if (json["rope_parameters"] is not null) json.Remove("rope_theta");

        var config = CausalLanguageModelConfig.FromHuggingFaceConfig(json.ToJsonString());
        var shapes = SafetensorsTestFile.HuggingFaceShapes(config);
        var weights = SafetensorsTestFile.RandomWeights(shapes, seed: 11);
        using var temp = new TempFolder("sa-hfcfg-");
        File.WriteAllText(temp.File("config.json"), json.ToJsonString());
        SafetensorsTestFile.Write(temp.File("model.safetensors"), weights.ToDictionary(kv => kv.Key, kv => (shapes[kv.Key], kv.Value)));
        using var model = CausalLanguageModel.FromHuggingFace(temp.Path);

        var oracleConfig = JsonNode.Parse(json.ToJsonString())!.AsObject();
        if (oracleConfig["rope_parameters"] is JsonObject p)
        {
            oracleConfig["rope_theta"] = p["rope_theta"]!.DeepClone();
            oracleConfig["rope_scaling"] = p.DeepClone();
        }
        var tokens = Enumerable.Range(0, Positions).Select(i => (long)((i * 7 + 3) % 23)).ToArray();
        var expected = new ReferenceDecoder(config, weights, TransformersInverseFrequency(oracleConfig, config.HeadDim)).Logits(tokens);
        using var ids = tensor(tokens, dtype: ScalarType.Int64).unsqueeze(0);
        using var logits = model.forward(ids).to_type(ScalarType.Float64);
        var actual = logits.data<double>().ToArray();
        for (int t = 0; t < Positions; t++)
            for (int v = 0; v < 23; v++)
                Assert.True(Math.Abs(expected[t][v] - actual[t * 23 + v]) <= 2e-4, $"position {t}, logit {v}: expected {expected[t][v]}, got {actual[t * 23 + v]}");
    }

    [Fact]
    public void The_held_out_Llama_3_1_setting_loads_as_llama3_scaling_with_transformers_frequencies()
    {
        // Llama 3.1 8B: head_dim 128, rope_theta 500000 and the held-out check's rope_scaling.
        var json = BaseConfig();
        json["hidden_size"] = 512;
        json["rope_theta"] = 500000.0;
        json["rope_scaling"] = JsonNode.Parse("""{"rope_type": "llama3", "factor": 32, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}""");
        var config = CausalLanguageModelConfig.FromHuggingFaceConfig(json.ToJsonString());
        Assert.Equal(128, config.HeadDim);
        Assert.Equal(new RopeScaling { Kind = RopeScalingKind.Llama3, Factor = 32, LowFrequencyFactor = 1, HighFrequencyFactor = 4, OriginalMaxPositionEmbeddings = 8192 }, config.RopeScaling);
        var oracle = TransformersInverseFrequency(json, config.HeadDim);
        var scaled = RotaryEmbedding.InverseFrequencies(config.HeadDim, config.RopeTheta, config.RopeScaling);
        var unscaled = RotaryEmbedding.InverseFrequencies(config.HeadDim, config.RopeTheta, null);
        for (int i = 0; i < scaled.Length; i++) Assert.Equal(oracle(i), scaled[i], 15);
        Assert.True(Enumerable.Range(0, scaled.Length).Count(i => scaled[i] < unscaled[i] * 0.99) > 20, "most low frequencies are rescaled");
    }

    public static TheoryData<string, string, string> RefusedSettings => new()
    {
        { "llama", """{"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32}}""", "rope_scaling.rope_type' = 'yarn'" },
        { "llama", """{"rope_scaling": {"type": "dynamic", "factor": 2.0}}""", "rope_scaling.rope_type' = 'dynamic'" },
        { "llama", """{"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}""", "rope_scaling.low_freq_factor' = (missing)" },
        { "llama", """{"hidden_act": "gelu"}""", "hidden_act' = 'gelu'" },
        { "llama", """{"partial_rotary_factor": 0.5}""", "partial_rotary_factor' = 0.5" },
        { "llama", """{"attention_dropout": 0.1}""", "attention_dropout' = 0.1" },
        { "llama", """{"quantization_config": {"quant_method": "gptq", "bits": 4}}""", "quantization_config' = {" },
        { "llama", """{"architectures": ["LlamaForSequenceClassification"]}""", "architectures' = 'LlamaForSequenceClassification'" },
        { "mistral", """{"sliding_window": 32}""", "sliding_window' = 32" },
        { "qwen2", """{"use_sliding_window": true, "sliding_window": 16}""", "use_sliding_window' = true" },
        { "qwen2", """{"mlp_bias": true}""", "mlp_bias' = true" },
        { "mistral", """{"attention_bias": true}""", "attention_bias' = true" },
        { "qwen2", """{"layer_types": ["full_attention", "sliding_attention"]}""", "layer_types' = 'sliding_attention'" },
        { "gemma", "{}", "model_type' = 'gemma'" },
    };

    [Theory]
    [MemberData(nameof(RefusedSettings))]
    public void A_setting_that_would_change_the_forward_pass_is_refused_naming_field_and_value(string modelType, string overrides, string expected)
    {
        var json = BaseConfig(modelType);
        foreach (var (key, value) in JsonNode.Parse(overrides)!.AsObject()) json[key] = value?.DeepClone();
        var ex = Assert.Throws<ArgumentException>(() => CausalLanguageModelConfig.FromHuggingFaceConfig(json.ToJsonString()));
        Assert.Contains("field '" + expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_weight_the_configured_architecture_lacks_is_refused_by_name()
    {
        // attention_bias false, yet the file carries o_proj biases: dropping them would change the logits silently.
        var json = BaseConfig();
        var config = CausalLanguageModelConfig.FromHuggingFaceConfig(json.ToJsonString());
        var shapes = SafetensorsTestFile.HuggingFaceShapes(config with { AttentionBias = true, AttentionOutputBias = true });
        var weights = SafetensorsTestFile.RandomWeights(shapes, seed: 3);
        using var temp = new TempFolder("sa-hfcfg-");
        File.WriteAllText(temp.File("config.json"), json.ToJsonString());
        SafetensorsTestFile.Write(temp.File("model.safetensors"), weights.ToDictionary(kv => kv.Key, kv => (shapes[kv.Key], kv.Value)));
        var ex = Assert.Throws<InvalidDataException>(() => CausalLanguageModel.FromHuggingFace(temp.Path));
        Assert.Contains(".bias'", ex.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string> RoundTripConfigs => new()
    {
        "{}",
        """{"AttentionBias": true}""",
        """{"AttentionBias": true, "AttentionOutputBias": true, "MlpBias": true}""",
        """{"HeadDim": 6}""",
        """{"TieWordEmbeddings": false, "RopeScaling": {"Kind": 1, "Factor": 8, "LowFrequencyFactor": 1, "HighFrequencyFactor": 4, "OriginalMaxPositionEmbeddings": 16}}""",
        """{"RopeScaling": {"Kind": 0, "Factor": 2.5}}""",
    };

    [Theory]
    [MemberData(nameof(RoundTripConfigs))]
    public void The_written_config_json_reads_back_as_the_same_configuration(string overrides)
    {
        var config = CausalLanguageModelTests.Tiny;
        var o = JsonNode.Parse(overrides)!.AsObject();
        if (o["AttentionBias"] is { } ab) config = config with { AttentionBias = ab.GetValue<bool>() };
        if (o["AttentionOutputBias"] is { } ob) config = config with { AttentionOutputBias = ob.GetValue<bool>() };
        if (o["MlpBias"] is { } mb) config = config with { MlpBias = mb.GetValue<bool>() };
        if (o["HeadDim"] is { } hd) config = config with { HeadDim = hd.GetValue<int>() };
        if (o["TieWordEmbeddings"] is { } tw) config = config with { TieWordEmbeddings = tw.GetValue<bool>() };
        if (o["RopeScaling"] is { } rs) config = config with { RopeScaling = JsonSerializer.Deserialize<RopeScaling>(rs.ToJsonString()) };
        var json = HuggingFaceConfig.Write(config).ToJsonString();
        Assert.Equal(config, CausalLanguageModelConfig.FromHuggingFaceConfig(json));
        Assert.Equal(config.AttentionBias && !config.AttentionOutputBias ? "Qwen2ForCausalLM" : "LlamaForCausalLM",
            JsonNode.Parse(json)!["architectures"]![0]!.GetValue<string>());
    }
}
