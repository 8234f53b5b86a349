using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Models;

[Collection(TorchRandomState.Name)]
public class HuggingFaceExportTests
{
    private static readonly long[] Tokens = [0, 22, 11, 3, 3, 9, 17, 1, 20, 5, 8, 13, 2, 19, 4, 6, 21, 7, 12, 15];

    private static float[] Logits(CausalLanguageModel model, long[]? tokens = null)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.eval();
        return model.forward(tensor(tokens ?? Tokens, dtype: ScalarType.Int64).unsqueeze(0)).contiguous().data<float>().ToArray();
    }

    private static CausalLanguageModel Random(CausalLanguageModelConfig config, int seed)
    {
        var model = new CausalLanguageModel(config with { InitializerRange = 0.2 }, seed);
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters().Where(np => !np.name.EndsWith("_proj.weight", StringComparison.Ordinal) && !np.name.Contains("embed", StringComparison.Ordinal)))
            p.add_(randn_like(p) * 0.1);
        return model;
    }

    public static TheoryData<string, CausalLanguageModelConfig> Configs => new()
    {
        { "llama tied", CausalLanguageModelTests.Tiny },
        { "llama untied, biases, head_dim, llama3 rope", CausalLanguageModelTests.Tiny with
            {
                TieWordEmbeddings = false, AttentionBias = true, AttentionOutputBias = true, MlpBias = true, HeadDim = 6,
                RopeScaling = new RopeScaling { Kind = RopeScalingKind.Llama3, Factor = 8, OriginalMaxPositionEmbeddings = 8 },
            } },
        { "qwen2 linear rope", CausalLanguageModelTests.Tiny with { AttentionBias = true, RopeScaling = new RopeScaling { Kind = RopeScalingKind.Linear, Factor = 3 } } },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void A_float32_export_loads_back_with_identical_logits(string name, CausalLanguageModelConfig config)
    {
        using var model = Random(config, seed: 1);
        using var temp = new TempFolder("sa-hf-");
        model.SaveHuggingFace(temp.Path);
        using var loaded = CausalLanguageModel.FromHuggingFace(temp.Path);
        Assert.Equal(model.Config, loaded.Config);
        Assert.True(Logits(model).SequenceEqual(Logits(loaded)), name);

        var json = JsonNode.Parse(File.ReadAllText(temp.File("config.json")))!.AsObject();
        Assert.Equal(config.AttentionBias && !config.AttentionOutputBias ? "Qwen2ForCausalLM" : "LlamaForCausalLM", json["architectures"]![0]!.GetValue<string>());
        Assert.Equal("float32", json["torch_dtype"]!.GetValue<string>());
        Assert.True(File.Exists(temp.File("generation_config.json")));
    }

    [Theory]
    [InlineData(ExportDType.BF16, "BF16")]
    [InlineData(ExportDType.F16, "F16")]
    public void A_half_precision_export_holds_every_weight_rounded_once_under_its_Hugging_Face_name(ExportDType dtype, string name)
    {
        var config = CausalLanguageModelTests.Tiny with { TieWordEmbeddings = false, AttentionBias = true };
        using var model = Random(config, seed: 2);
        using var temp = new TempFolder("sa-hf-");
        model.SaveHuggingFace(temp.Path, dtype);
        var (tensors, metadata) = SafetensorsTestFile.Read(temp.File("model.safetensors"));
        Assert.Equal("pt", metadata["format"]);
        var expected = SafetensorsTestFile.HuggingFaceShapes(config);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), tensors.Keys.Order(StringComparer.Ordinal));
        var type = dtype == ExportDType.BF16 ? ScalarType.BFloat16 : ScalarType.Float16;
        var state = model.state_dict();
        foreach (var (key, shape) in expected)
        {
            Assert.Equal(shape, tensors[key].Shape);
            Assert.Equal(name, tensors[key].DType);
            var rounded = state[key].to_type(type).to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
            Assert.Equal(rounded, tensors[key].Values);
        }
        // Loading widens to float32: the logits are those of the model with its weights rounded.
        using var loaded = CausalLanguageModel.FromHuggingFace(temp.Path);
        using (no_grad())
            foreach (var p in model.parameters()) p.copy_(p.to_type(type).to_type(ScalarType.Float32));
        Assert.True(Logits(model).SequenceEqual(Logits(loaded)));
        Assert.Equal(dtype == ExportDType.BF16 ? "bfloat16" : "float16", JsonNode.Parse(File.ReadAllText(temp.File("config.json")))!["torch_dtype"]!.GetValue<string>());
    }

    [Fact]
    public void Above_the_size_limit_the_weights_are_sharded_with_an_index_and_load_back_identically()
    {
        using var model = Random(CausalLanguageModelTests.Tiny with { TieWordEmbeddings = false }, seed: 3);
        using var temp = new TempFolder("sa-hf-");
        model.SaveHuggingFace(temp.Path, options: new ModelExportOptions { MaxShardBytes = 3000 });
        Assert.False(File.Exists(temp.File("model.safetensors")));
        var index = JsonNode.Parse(File.ReadAllText(temp.File("model.safetensors.index.json")))!.AsObject();
        var map = index["weight_map"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>());
        var shards = Directory.GetFiles(temp.Path, "model-*-of-*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.True(shards.Count > 2);
        Assert.Equal(shards, map.Values.Distinct().Order(StringComparer.Ordinal));
        long total = 0;
        foreach (var shard in shards)
        {
            var (tensors, _) = SafetensorsTestFile.Read(temp.File(shard!));
            Assert.All(tensors.Keys, k => Assert.Equal(shard, map[k]));
            total += tensors.Values.Sum(t => t.Values.LongLength * 4);
        }
        Assert.Equal(total, index["metadata"]!["total_size"]!.GetValue<long>());
        Assert.Equal(model.state_dict().Keys.Order(StringComparer.Ordinal), map.Keys.Order(StringComparer.Ordinal));
        using var loaded = CausalLanguageModel.FromHuggingFace(temp.Path);
        Assert.True(Logits(model).SequenceEqual(Logits(loaded)));
    }

    [Fact]
    public void A_LoRA_model_exports_merged_and_as_an_adapter_folder()
    {
        using var model = Random(CausalLanguageModelTests.Tiny, seed: 4);
        model.AddLoraAdapters(new LoraOptions { Rank = 2, Alpha = 8 }, seed: 1);
        LoraTests.Randomize(model, seed: 2);
        var adapted = Logits(model);
        using var temp = new TempFolder("sa-hf-");
        ModelExporter.Export(model, null, ExportFormat.HuggingFace, ExportDType.F32, temp.File("merged"));
        ModelExporter.Export(model, null, ExportFormat.Peft, ExportDType.F32, temp.File("adapter"));
        using var merged = CausalLanguageModel.FromHuggingFace(temp.File("merged"));
        Assert.Null(merged.Lora);
        Assert.True(adapted.Zip(Logits(merged)).Max(p => Math.Abs(p.First - p.Second)) <= 1e-5);
        Assert.True(File.Exists(Path.Combine(temp.File("adapter"), "adapter_config.json")));
        Assert.NotNull(model.Lora); // exporting merged leaves the model's adapters in place
    }

    [Fact]
    public void The_GPT2_tokenizer_json_tokenizes_as_GPT2_and_its_merges_are_GPT2s()
    {
        using var model = new CausalLanguageModel(CausalLanguageModelTests.Tiny with { VocabSize = 50257, HiddenSize = 8, IntermediateSize = 8, NumHeads = 2, NumKeyValueHeads = 1, NumLayers = 1 }, seed: 5);
        using var temp = new TempFolder("sa-hf-");
        model.SaveHuggingFace(temp.Path, tokenizer: ModelTokenizers.Gpt2(), options: new ModelExportOptions { ChatTemplate = PromptTemplate.Llama3.ChatTemplate });
        var json = JsonNode.Parse(File.ReadAllText(temp.File("tokenizer.json")))!.AsObject();
        var merges = json["model"]!["merges"]!.AsArray().Select(m => m!.GetValue<string>()).ToList();
        Assert.Equal(50000, merges.Count);
        // The first lines of GPT-2's published merges.txt.
        Assert.Equal(["Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he", "e r", "Ġ s", "a t"], merges.Take(10));

        var reloaded = ModelTokenizers.FromFile(temp.File("tokenizer.json"));
        var gpt2 = ModelTokenizers.Gpt2();
        foreach (var text in ParityModels.Prompts.Append("Zymurgy, naïve café — 東京 🙂 \t\n  spaces   and 12345"))
        {
            Assert.Equal(gpt2.EncodeToIds(text), reloaded.EncodeToIds(text));
            Assert.Equal(text, reloaded.Decode(gpt2.EncodeToIds(text)));
        }
        var config = JsonNode.Parse(File.ReadAllText(temp.File("tokenizer_config.json")))!.AsObject();
        Assert.Equal(ChatTemplates.Jinja(ChatTemplateFamily.Llama3), config["chat_template"]!.GetValue<string>());
        Assert.Equal("<|endoftext|>", config["eos_token"]!.GetValue<string>());
        var modelConfig = JsonNode.Parse(File.ReadAllText(temp.File("config.json")))!;
        Assert.Equal(50256, modelConfig["eos_token_id"]!.GetValue<int>());
    }

    [Fact]
    public void A_compact_vocabulary_exports_its_full_inner_vocabulary_so_Hugging_Face_tokenizes_every_text()
    {
        var compact = ParityModels.Tokenizer;
        using var model = Random(ParityModels.DefaultShape with { NumLayers = 1 }, seed: 6);
        using var temp = new TempFolder("sa-hf-");
        model.SaveHuggingFace(temp.Path, tokenizer: compact);
        const string Text = "Zymurgy and quixotic xylophones! Is it fair to keep money you found?";
        var extras = Enumerable.Range(0, 50257).Where(j => compact.ToCompactId(j) == compact.UnknownId).ToList();
        var expected = ModelTokenizers.Gpt2().EncodeToIds(Text)
            .Select(j => compact.ToCompactId(j) is var c && c != compact.UnknownId ? c : compact.VocabularySize + extras.IndexOf(j)).ToArray();
        var reloaded = ModelTokenizers.FromFile(temp.File("tokenizer.json"));
        var ids = reloaded.EncodeToIds(Text).ToArray();
        Assert.Equal(expected, ids);

        using var loaded = CausalLanguageModel.FromHuggingFace(temp.Path);
        Assert.Equal(compact.VocabularySize + extras.Count, loaded.Config.VocabSize);
        var ours = Logits(model, [.. compact.EncodeToIds(Text).Select(i => (long)i)]);
        var theirs = Logits(loaded, [.. ids.Select(i => (long)i)]);
        int v = compact.VocabularySize, w = loaded.Config.VocabSize;
        for (int t = 0; t < ids.Length; t++)
            for (int k = 0; k < v; k++) Assert.Equal(ours[t * v + k], theirs[t * w + k], 5);
    }

    [Fact]
    public void A_compact_vocabulary_in_its_own_layout_writes_vocabulary_json_and_the_chat_template()
    {
        var compact = ParityModels.Tokenizer;
        using var model = new CausalLanguageModel(ParityModels.DefaultShape with { NumLayers = 1 }, seed: 7);
        using var temp = new TempFolder("sa-hf-");
        model.SaveHuggingFace(temp.Path, tokenizer: compact, options: new ModelExportOptions { Vocabulary = VocabularyLayout.Compact });
        Assert.False(File.Exists(temp.File("tokenizer.json")));
        var reloaded = CompactVocabularyTokenizer.Load(temp.File("vocabulary.json"), ModelTokenizers.Gpt2());
        Assert.Equal(compact.EncodeToIds(ParityModels.Prompts[0]), reloaded.EncodeToIds(ParityModels.Prompts[0]));
        var config = JsonNode.Parse(File.ReadAllText(temp.File("tokenizer_config.json")))!.AsObject();
        Assert.Equal(PromptTemplate.Alpaca.ChatTemplate, config["chat_template"]!.GetValue<string>());
        Assert.Equal("<|unk|>", config["unk_token"]!.GetValue<string>());
        using var loaded = CausalLanguageModel.FromHuggingFace(temp.Path);
        Assert.True(Logits(model, [1, 2, 3, 4]).SequenceEqual(Logits(loaded, [1, 2, 3, 4])));
    }

    [Fact]
    public void A_tokenizer_json_tokenizer_exports_its_file_to_both_formats_and_llama_cpp_tokenizes_as_it_does()
    {
        using var temp = new TempFolder("sa-hf-");
        var small = CausalLanguageModelTests.Tiny with { VocabSize = 50257, HiddenSize = 8, IntermediateSize = 8, NumHeads = 2, NumKeyValueHeads = 1, NumLayers = 1 };
        using (var writer = new CausalLanguageModel(small, seed: 8)) writer.SaveHuggingFace(temp.File("source"), tokenizer: ModelTokenizers.Gpt2());
        var file = Path.Combine(temp.File("source"), "tokenizer.json");
        Tokenizer fromFile = ModelTokenizers.FromFile(file);
        using var model = new CausalLanguageModel(small, seed: 9);
        var options = new ModelExportOptions { TokenizerFile = file, ChatTemplate = PromptTemplate.ChatMl.ChatTemplate };
        ModelExporter.Export(model, fromFile, ExportFormat.HuggingFace, ExportDType.F32, temp.File("hf"), options);
        Assert.Equal(File.ReadAllText(file), File.ReadAllText(Path.Combine(temp.File("hf"), "tokenizer.json")));
        var gguf = temp.File("model.gguf");
        ModelExporter.Export(model, fromFile, ExportFormat.Gguf, ExportDType.F16, gguf, options);
        using var llama = new LlamaCppModel(gguf);
        foreach (var text in ParityModels.Prompts) Assert.Equal(fromFile.EncodeToIds(text).ToArray(), llama.Tokenize(text));
        Assert.Throws<ArgumentException>(() => ModelExporter.Export(model, fromFile, ExportFormat.Gguf, ExportDType.F16, gguf, new ModelExportOptions()));
    }

    private sealed class Recorder : IProgress<ExportProgress>
    {
        public List<ExportProgress> Reports { get; } = [];

        public void Report(ExportProgress value) => Reports.Add(value);
    }

    [Fact]
    public void An_export_reports_each_tensor_and_a_cancelled_one_leaves_no_partial_file()
    {
        using var model = new CausalLanguageModel(CausalLanguageModelTests.Tiny, seed: 1);
        using var temp = new TempFolder("sa-hf-");
        var recorder = new Recorder();
        model.SaveHuggingFace(temp.File("hf"), progress: recorder);
        Assert.Equal(model.state_dict().Count, recorder.Reports.Count);
        Assert.Equal(Enumerable.Range(1, recorder.Reports.Count), recorder.Reports.Select(r => r.Done));
        Assert.All(recorder.Reports, r => Assert.Equal(recorder.Reports.Count, r.Total));

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => model.SaveHuggingFace(temp.File("cancelled"), cancellationToken: cancelled.Token));
        Assert.False(File.Exists(Path.Combine(temp.File("cancelled"), "model.safetensors")));
        var tokenizer = CompactVocabularyTokenizer.Build(ModelTokenizers.Gpt2(), ["a b c d e f g h i j k l m n o p q r s t u"]);
        using var small = new CausalLanguageModel(CausalLanguageModelTests.Tiny with { VocabSize = tokenizer.VocabularySize }, seed: 1);
        Assert.Throws<OperationCanceledException>(() => small.SaveGguf(temp.File("cancelled.gguf"), ExportDType.F32, tokenizer, cancellationToken: cancelled.Token));
        Assert.False(File.Exists(temp.File("cancelled.gguf")));
    }

    [Theory]
    [InlineData(ExportFormat.HuggingFace, ExportDType.Q8_0, "--dtype q8_0 cannot be written as HuggingFace; it takes f32, f16 or bf16.")]
    [InlineData(ExportFormat.Peft, ExportDType.Q8_0, "--dtype q8_0 cannot be written as Peft; it takes f32, f16 or bf16.")]
    [InlineData(ExportFormat.Gguf, ExportDType.BF16, "--dtype bf16 cannot be written as Gguf; it takes f32, f16 or q8_0.")]
    public void A_format_and_dtype_that_do_not_go_together_get_one_clear_message(ExportFormat format, ExportDType dtype, string message)
    {
        var ex = Assert.Throws<ArgumentException>(() => ModelExporter.Validate(format, dtype));
        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Command_line_spellings_parse_and_a_bad_one_names_itself_and_the_choices()
    {
        Assert.Equal(ExportFormat.HuggingFace, ExportNames.ParseFormat("hf"));
        Assert.Equal(ExportFormat.Gguf, ExportNames.ParseFormat("GGUF"));
        Assert.Equal(ExportDType.Q8_0, ExportNames.ParseDType("q8_0"));
        Assert.StartsWith("Unknown export format 'onnx'; use hf|gguf|peft.", Assert.Throws<ArgumentException>(() => ExportNames.ParseFormat("onnx")).Message, StringComparison.Ordinal);
        Assert.StartsWith("Unknown dtype 'int4'; use f32|f16|bf16|q8_0.", Assert.Throws<ArgumentException>(() => ExportNames.ParseDType("int4")).Message, StringComparison.Ordinal);
        using var model = new CausalLanguageModel(CausalLanguageModelTests.Tiny, seed: 1);
        Assert.Contains("no LoRA adapter", Assert.Throws<ArgumentException>(() => ModelExporter.Export(model, null, ExportFormat.Peft, ExportDType.F32, "x")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_checkpoint_folder_with_a_compact_vocabulary_exports_to_every_format()
    {
        var compact = ParityModels.Tokenizer;
        using var temp = new TempFolder("sa-hf-");
        var checkpoint = temp.File("variant");
        float[] logits;
        using (var model = new CausalLanguageModel(ParityModels.DefaultShape with { NumLayers = 1, InitializerRange = 0.1 }, seed: 10))
        {
            model.eval();
            model.AddLoraAdapters(new LoraOptions { Rank = 4 }, seed: 2);
            LoraTests.Randomize(model, seed: 3);
            model.SaveCheckpoint(checkpoint);
            compact.Save(Path.Combine(checkpoint, "vocabulary.json"));
            logits = ParityModels.Logits(model, compact.EncodeToIds(ParityModels.Prompts[1]).ToArray()).SelectMany(r => r).ToArray();
        }
        ModelExporter.ExportCheckpoint(checkpoint, ExportFormat.Gguf, ExportDType.F32, temp.File("out/model.gguf"));
        ModelExporter.ExportCheckpoint(checkpoint, ExportFormat.HuggingFace, ExportDType.BF16, temp.File("hf"));
        ModelExporter.ExportCheckpoint(checkpoint, ExportFormat.Peft, ExportDType.F32, temp.File("peft"));
        using var llama = new LlamaCppModel(temp.File("out/model.gguf"));
        var ids = llama.Tokenize(ParityModels.Prompts[1]);
        Assert.Equal(compact.EncodeToIds(ParityModels.Prompts[1]).ToArray(), ids);
        var theirs = llama.Logits(ids).SelectMany(r => r).ToArray();
        var max = logits.Zip(theirs).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(max <= 1e-3, $"max |diff| {max}");
        Assert.True(File.Exists(Path.Combine(temp.File("hf"), "tokenizer.json")), string.Join(", ", Directory.GetFiles(temp.File("hf")).Select(Path.GetFileName)));
        Assert.True(File.Exists(Path.Combine(temp.File("peft"), "adapter_model.safetensors")));
    }
}
