using System.Text;
using System.Text.Json;
using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Models;

public class CausalLanguageModelTests
{
    internal static readonly CausalLanguageModelConfig Tiny = new()
    {
        VocabSize = 23, HiddenSize = 16, IntermediateSize = 24, NumLayers = 2, NumHeads = 4, NumKeyValueHeads = 2, MaxSequenceLength = 32,
    };

    internal static Dictionary<string, double[]> Weights(CausalLanguageModel model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.Float64).data<double>().ToArray());

    private static double[][] ModelLogits(CausalLanguageModel model, long[] tokens)
    {
        using var ids = tensor(tokens, dtype: ScalarType.Int64).unsqueeze(0);
        using var logits = model.forward(ids).to_type(ScalarType.Float64);
        var flat = logits.data<double>().ToArray();
        var v = model.Config.VocabSize;
        return Enumerable.Range(0, tokens.Length).Select(t => flat[(t * v)..((t + 1) * v)]).ToArray();
    }

    private static void AssertClose(double[][] expected, double[][] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var t = 0; t < expected.Length; t++)
            for (var j = 0; j < expected[t].Length; j++)
                Assert.True(Math.Abs(expected[t][j] - actual[t][j]) <= tolerance, $"position {t}, logit {j}: expected {expected[t][j]}, got {actual[t][j]}");
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Float64_model_matches_the_loop_oracle(bool tied, bool bias)
    {
        var config = Tiny with { TieWordEmbeddings = tied, AttentionBias = bias, InitializerRange = 0.3 };
        using var model = new CausalLanguageModel(config, seed: 1);
        model.to(ScalarType.Float64);
        if (bias)
        {
            using var _ = no_grad();
            // Fresh biases are zero; give them values so a dropped bias would show.
            foreach (var (name, p) in model.named_parameters().Where(np => np.name.EndsWith(".bias", StringComparison.Ordinal)))
                p.copy_(randn_like(p));
        }

        long[] tokens = [3, 17, 5, 5, 22, 0, 9];
        var expected = new ReferenceDecoder(config, Weights(model)).Logits(tokens);
        AssertClose(expected, ModelLogits(model, tokens), 1e-9);
    }

    [Fact]
    public void Rotary_embedding_matches_the_loop_oracle_at_an_offset()
    {
        using var x = randn(1, 2, 3, 8, dtype: ScalarType.Float64);
        var (cos, sin) = RotaryEmbedding.Angles(8, offset: 5, length: 3, 10000.0, ScalarType.Float64, CPU);
        using var y = RotaryEmbedding.Apply(x, cos, sin);
        cos.Dispose();
        sin.Dispose();
        var xs = x.data<double>().ToArray();
        var ys = y.data<double>().ToArray();
        for (var h = 0; h < 2; h++)
            for (var t = 0; t < 3; t++)
            {
                var offset = (h * 3 + t) * 8;
                var expected = ReferenceDecoder.Rope(xs[offset..(offset + 8)], 5 + t, 10000.0);
                for (var c = 0; c < 8; c++) Assert.Equal(expected[c], ys[offset + c], 12);
            }
    }

    [Fact]
    public void Rms_norm_matches_the_loop_oracle()
    {
        using var norm = new RmsNorm(6, 1e-5);
        norm.to(ScalarType.Float64);
        using (no_grad()) norm.parameters().Single().copy_(tensor(new[] { 0.5, 1, 2, -1, 3, 0.1 }));
        using var x = randn(4, 6, dtype: ScalarType.Float64);
        using var y = norm.forward(x);
        var xs = x.data<double>().ToArray();
        var ys = y.data<double>().ToArray();
        for (var r = 0; r < 4; r++)
        {
            var expected = ReferenceDecoder.RmsNorm(xs[(r * 6)..((r + 1) * 6)], [0.5, 1, 2, -1, 3, 0.1], 1e-5);
            for (var c = 0; c < 6; c++) Assert.Equal(expected[c], ys[r * 6 + c], 12);
        }
    }

    [Fact]
    public void Grouped_query_attention_shares_each_key_value_head_with_consecutive_query_heads()
    {
        // Four query heads over two key/value heads: heads 0,1 read kv head 0 and heads 2,3 read kv head 1.
        var config = Tiny with { NumLayers = 1 };
        using var attention = new GroupedQueryAttention(config);
        attention.to(ScalarType.Float64);
        var w = attention.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.data<double>().ToArray());
        using var x = randn(1, 5, 16, dtype: ScalarType.Float64);
        var (cos, sin) = RotaryEmbedding.Angles(4, 0, 5, 10000.0, ScalarType.Float64, CPU);
        using var y = attention.Forward(x, cos, sin, null, 0);
        cos.Dispose();
        sin.Dispose();

        var xs = x.data<double>().ToArray();
        var rows = Enumerable.Range(0, 5).Select(t => xs[(t * 16)..((t + 1) * 16)]).ToArray();
        double[] Rot(double[] p, int heads, int t) =>
            Enumerable.Range(0, heads).SelectMany(h => ReferenceDecoder.Rope(p[(h * 4)..((h + 1) * 4)], t, 10000.0)).ToArray();
        var q = rows.Select((r, t) => Rot(ReferenceDecoder.Linear(r, w["q_proj.weight"], null, 16), 4, t)).ToArray();
        var k = rows.Select((r, t) => Rot(ReferenceDecoder.Linear(r, w["k_proj.weight"], null, 8), 2, t)).ToArray();
        var v = rows.Select(r => ReferenceDecoder.Linear(r, w["v_proj.weight"], null, 8)).ToArray();
        var expected = ReferenceDecoder.Attention(q, k, v, 4, 2, 4).Select(a => ReferenceDecoder.Linear(a, w["o_proj.weight"], null, 16)).ToArray();
        var ys = y.data<double>().ToArray();
        for (var t = 0; t < 5; t++)
            for (var c = 0; c < 16; c++) Assert.Equal(expected[t][c], ys[t * 16 + c], 10);
    }

    [Fact]
    public void Logits_at_a_position_ignore_every_later_token()
    {
        using var model = new CausalLanguageModel(Tiny, seed: 2);
        var a = ModelLogits(model, [1, 2, 3, 4, 5, 6]);
        var b = ModelLogits(model, [1, 2, 3, 20, 21, 22]);
        AssertClose(a[..3], b[..3], 1e-5);
        Assert.True(Math.Abs(a[4][0] - b[4][0]) > 1e-7, "later positions should depend on the changed tokens");
    }

    [Fact]
    public void Incremental_decoding_with_the_cache_equals_the_full_forward()
    {
        using var model = new CausalLanguageModel(Tiny, seed: 3);
        model.to(ScalarType.Float64);
        long[] tokens = [4, 8, 15, 16, 23 % 23, 7, 1];
        var full = ModelLogits(model, tokens);
        using var cache = model.CreateCache();
        var rows = new List<double[]>();
        // A three-token prefill, a two-token chunk (explicit mask path), then single tokens.
        foreach (var chunk in new[] { tokens[..3], tokens[3..5], tokens[5..6], tokens[6..] })
        {
            using var ids = tensor(chunk, dtype: ScalarType.Int64).unsqueeze(0);
            using var logits = model.Logits(ids, cache);
            var flat = logits.data<double>().ToArray();
            for (var t = 0; t < chunk.Length; t++) rows.Add(flat[(t * 23)..((t + 1) * 23)]);
        }
        Assert.Equal(tokens.Length, cache.Length);
        AssertClose(full, rows.ToArray(), 1e-10);
    }

    [Fact]
    public void TorchSharp_checkpoint_round_trips()
    {
        using var temp = new TempFolder("sa-model-");
        string dir = temp.Path;
        using var model = new CausalLanguageModel(Tiny with { TieWordEmbeddings = false }, seed: 4);
        model.SaveCheckpoint(dir);
        using var loaded = CausalLanguageModel.LoadCheckpoint(dir);
        Assert.Equal(model.Config, loaded.Config);
        AssertClose(ModelLogits(model, [1, 2, 3]), ModelLogits(loaded, [1, 2, 3]), 0);
    }

    [Fact]
    public void A_truncated_weights_file_or_a_bad_config_is_reported_with_the_file_name()
    {
        using var temp = new TempFolder("sa-model-");
        using (var model = new CausalLanguageModel(Tiny, seed: 4)) model.SaveCheckpoint(temp.Path);
        string weights = Path.Combine(temp.Path, "model.bin");
        byte[] all = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, all[..(all.Length / 2)]);
        var truncated = Assert.Throws<InvalidDataException>(() => CausalLanguageModel.LoadCheckpoint(temp.Path));
        Assert.Contains(weights, truncated.Message, StringComparison.Ordinal);

        File.WriteAllText(Path.Combine(temp.Path, "config.json"), "{\"model_type\": \"llama\", \"hidden_size\": ");
        var config = Assert.Throws<InvalidDataException>(() => CausalLanguageModel.LoadCheckpoint(temp.Path));
        Assert.Contains(Path.Combine(temp.Path, "config.json"), config.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("llama", false, false)]
    [InlineData("qwen2", true, false)]
    [InlineData("llama", true, true)]
    public void Hugging_Face_safetensors_checkpoint_reproduces_the_oracle_logits(string modelType, bool tied, bool bfloat16)
    {
        var config = Tiny with { AttentionBias = modelType == "qwen2", TieWordEmbeddings = tied, RmsNormEpsilon = 1e-6 };
        // Random weights in Hugging Face naming, written by an independent safetensors writer.
        var rng = new Random(5);
        var shapes = SafetensorsTestFile.HuggingFaceShapes(config);
        var weights = shapes.ToDictionary(kv => kv.Key, kv => Enumerable.Range(0, (int)kv.Value.Aggregate(1L, (a, b) => a * b))
            .Select(_ => kv.Key.Contains("norm", StringComparison.Ordinal) ? 1 + 0.2 * (rng.NextDouble() - 0.5) : 0.4 * (rng.NextDouble() - 0.5))
            .Select(v => bfloat16 ? SafetensorsTestFile.BFloat16Value(v) : (double)(float)v).ToArray());
        using var temp = new TempFolder("sa-hf-");
        string dir = temp.Path;
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model_type"] = modelType, ["vocab_size"] = 23, ["hidden_size"] = 16, ["intermediate_size"] = 24,
            ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2,
            ["max_position_embeddings"] = 32, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = tied,
        }));
        // Two shards plus a stray buffer, as real checkpoints have.
        var names = weights.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        SafetensorsTestFile.Write(Path.Combine(dir, "model-00001-of-00002.safetensors"), names.Take(names.Count / 2).ToDictionary(n => n, n => (shapes[n], weights[n])), bfloat16);
        var second = names.Skip(names.Count / 2).ToDictionary(n => n, n => (shapes[n], weights[n]));
        second["model.layers.0.self_attn.rotary_emb.inv_freq"] = ([2L], [1.0, 0.01]);
        SafetensorsTestFile.Write(Path.Combine(dir, "model-00002-of-00002.safetensors"), second, bfloat16);

        using var model = CausalLanguageModel.FromHuggingFace(dir);
        Assert.Equal(config, model.Config);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype)); // bf16 shards are widened
        long[] tokens = [0, 22, 11, 3, 3, 9];
        var expected = new ReferenceDecoder(config, weights).Logits(tokens);
        AssertClose(expected, ModelLogits(model, tokens), 2e-4);
    }

    [Fact]
    public void Hugging_Face_checkpoint_missing_a_weight_is_rejected_with_its_name()
    {
        using var temp = new TempFolder("sa-hf-");
        string dir = temp.Path;
        File.WriteAllText(Path.Combine(dir, "config.json"),
            """{"model_type":"llama","vocab_size":23,"hidden_size":16,"intermediate_size":24,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2,"tie_word_embeddings":true}""");
        SafetensorsTestFile.Write(Path.Combine(dir, "model.safetensors"), new() { ["model.norm.weight"] = ([16L], new double[16]) });
        var ex = Assert.Throws<InvalidDataException>(() => CausalLanguageModel.FromHuggingFace(dir));
        Assert.Contains("model.", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_config_names_the_bad_option()
    {
        var ex = Assert.Throws<ArgumentException>(() => (Tiny with { NumKeyValueHeads = 3 }).Validate());
        Assert.Equal("NumKeyValueHeads", ex.ParamName);
    }
}
