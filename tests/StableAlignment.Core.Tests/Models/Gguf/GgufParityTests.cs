using System.Globalization;
using LLama;
using LLama.Abstractions;
using LLama.Common;
using Microsoft.Extensions.AI;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using Xunit.Abstractions;

namespace StableAlignment.Core.Tests.Models;

/// <summary>The parity figures of one exported model in one GGUF type, measured against llama.cpp.</summary>
internal sealed record ParityFigures(string Model, ExportDType Type, double MaxAbsDifference, double LogitRange, int Positions, int ArgMaxAgreements, int? GenerationsIdentical)
{
    public double ArgMaxAgreement => (double)ArgMaxAgreements / Positions;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Model,-26} {ExportNames.Name(Type),-5} max|diff| {MaxAbsDifference:E2} (logits span {LogitRange:F1})  argmax {ArgMaxAgreements}/{Positions} ({ArgMaxAgreement:P1})  greedy-32 identical {GenerationsIdentical?.ToString(CultureInfo.InvariantCulture) ?? "-"}/20");
}

/// <summary>
/// Exports models of the default run's shape to GGUF (F32, F16, Q8_0) and measures llama.cpp against TorchSharp on the
/// same token ids: logits at every position of 20 prompts, and 32 greedy tokens per prompt in F32.
/// </summary>
public sealed class GgufParityFixture : IDisposable
{
    private readonly TempFolder _folder = new("sa-gguf-");

    internal static readonly (string Name, CausalLanguageModelConfig Config)[] Models =
    [
        ("default shape, tied", ParityModels.DefaultShape),
        ("llama3 rope, untied", ParityModels.DefaultShape with { RopeScaling = ParityModels.Llama3Scaling, TieWordEmbeddings = false }),
        ("qwen2 biases, linear rope", ParityModels.DefaultShape with { AttentionBias = true, RopeScaling = new RopeScaling { Kind = RopeScalingKind.Linear, Factor = 2 } }),
    ];

    public GgufParityFixture()
    {
        var tokenizer = ParityModels.Tokenizer;
        var prompts = ParityModels.PromptIds(tokenizer);
        var figures = new List<ParityFigures>();
        for (int m = 0; m < Models.Length; m++)
        {
            using var model = ParityModels.Create(Models[m].Config, seed: 100 + m);
            var expected = prompts.Select(p => ParityModels.Logits(model, p)).ToList();
            var range = expected.SelectMany(p => p).Max(row => row.Max() - row.Min());
            foreach (var type in (ExportDType[])[ExportDType.F32, ExportDType.F16, ExportDType.Q8_0])
            {
                var path = PathOf(m, type);
                model.SaveGguf(path, type, tokenizer, new ModelExportOptions { ChatTemplate = PromptTemplate.ChatMl.ChatTemplate });
                using var llama = new LlamaCppModel(path);
                double max = 0;
                int positions = 0, agree = 0;
                for (int p = 0; p < prompts.Count; p++)
                {
                    var actual = llama.Logits(prompts[p]);
                    for (int t = 0; t < prompts[p].Length; t++)
                    {
                        for (int v = 0; v < expected[p][t].Length; v++) max = Math.Max(max, Math.Abs(expected[p][t][v] - actual[t][v]));
                        positions++;
                        if (LlamaCppModel.ArgMax(expected[p][t]) == LlamaCppModel.ArgMax(actual[t])) agree++;
                    }
                }
                int? identical = type != ExportDType.F32 ? null
                    : prompts.Count(p => ParityModels.Greedy(model, p, 32).SequenceEqual(llama.Greedy(p, 32)));
                figures.Add(new ParityFigures(Models[m].Name, type, max, range, positions, agree, identical));
            }
        }
        Figures = figures;
    }

    internal IReadOnlyList<ParityFigures> Figures { get; }

    internal string PathOf(int model, ExportDType type) => Path.Combine(_folder.Path, $"model{model}-{ExportNames.Name(type)}.gguf");

    internal string Folder => _folder.Path;

    public void Dispose() => _folder.Dispose();
}

[Collection(TorchRandomState.Name)]
public sealed class GgufParityTests(GgufParityFixture fixture, ITestOutputHelper output) : IClassFixture<GgufParityFixture>
{
    private static CompactVocabularyTokenizer Compact => ParityModels.Tokenizer;

    [Fact]
    public void F32_logits_agree_with_llama_cpp_within_1e_3_at_every_position()
    {
        foreach (var f in fixture.Figures) output.WriteLine(f.ToString());
        // The rope-scaled model must be compared where scaling matters: past its low-frequency wavelength of 16.
        Assert.True(ParityModels.PromptIds(Compact).Max(p => p.Length) > 2 * ParityModels.Llama3Scaling.OriginalMaxPositionEmbeddings);
        Assert.All(fixture.Figures.Where(f => f.Type == ExportDType.F32), f => Assert.True(f.MaxAbsDifference <= 1e-3, f.ToString()));
    }

    [Fact]
    public void F16_logits_agree_with_llama_cpp_within_5e_2() =>
        Assert.All(fixture.Figures.Where(f => f.Type == ExportDType.F16), f => Assert.True(f.MaxAbsDifference <= 5e-2, f.ToString()));

    [Fact]
    public void Q8_0_argmax_agrees_with_llama_cpp_on_at_least_95_percent_of_positions() =>
        Assert.All(fixture.Figures.Where(f => f.Type == ExportDType.Q8_0), f => Assert.True(f.ArgMaxAgreement >= 0.95, f.ToString()));

    [Fact]
    public void F32_greedy_generation_of_32_tokens_is_identical_for_at_least_18_of_20_prompts() =>
        Assert.All(fixture.Figures.Where(f => f.Type == ExportDType.F32), f => Assert.True(f.GenerationsIdentical >= 18, f.ToString()));

    [Fact]
    public void Llama_cpp_tokenizes_the_20_prompts_exactly_as_the_compact_vocabulary_does()
    {
        using var llama = new LlamaCppModel(fixture.PathOf(0, ExportDType.F32));
        Assert.Equal(Compact.VocabularySize, llama.VocabularySize);
        foreach (var prompt in ParityModels.Prompts)
            Assert.Equal(Compact.EncodeToIds(prompt).ToArray(), llama.Tokenize(prompt));
    }

    /// <summary>
    /// The documented difference: llama.cpp's BPE looks an unknown merged token up as a whole, then falls back to looking
    /// up each byte of its byte-level text as a one-character token; only printable ASCII ('!'..'~') is a one-byte
    /// character there, so the token comes out as those of its ASCII characters the compact vocabulary has, in order.
    /// </summary>
    [Fact]
    public void A_token_outside_the_compact_vocabulary_comes_out_of_llama_cpp_as_its_ASCII_characters_in_the_vocabulary()
    {
        const string Text = "Zymurgy and quixotic xylophones, naïvely!";
        var expected = ParityModels.LlamaCppTokensOfCompactLayout(Compact, Text);
        using var llama = new LlamaCppModel(fixture.PathOf(0, ExportDType.F32));
        var ours = Compact.EncodeToIds(Text).ToArray();
        Assert.Contains(Compact.UnknownId, ours); // the text does meet unknown tokens
        Assert.Equal(expected, llama.Tokenize(Text));
    }

    [Fact]
    public void Full_inner_layout_tokenizes_every_text_as_GPT2_and_keeps_the_model_logits()
    {
        const string Text = "Zymurgy and quixotic xylophones, naïvely! Is it fair to keep money you found?";
        var gpt2 = ModelTokenizers.Gpt2();
        var extras = Enumerable.Range(0, 50257).Where(j => Compact.ToCompactId(j) == Compact.UnknownId).ToList();
        var expected = gpt2.EncodeToIds(Text).Select(j => Compact.ToCompactId(j) is var c && c != Compact.UnknownId ? c : Compact.VocabularySize + extras.IndexOf(j)).ToArray();

        using var model = ParityModels.Create(ParityModels.DefaultShape, seed: 7);
        var path = Path.Combine(fixture.Folder, "full-inner.gguf");
        model.SaveGguf(path, ExportDType.F32, Compact, new ModelExportOptions { Vocabulary = VocabularyLayout.FullInner });
        using var llama = new LlamaCppModel(path);
        Assert.Equal(Compact.VocabularySize + extras.Count, llama.VocabularySize);
        var tokens = llama.Tokenize(Text);
        Assert.Equal(expected, tokens);

        // Every extra id embeds as UnknownId, so the model sees exactly what it sees through the compact tokenizer.
        var ours = ParityModels.Logits(model, Compact.EncodeToIds(Text).ToArray());
        var theirs = llama.Logits(tokens);
        for (int t = 0; t < tokens.Length; t++)
        {
            for (int v = 0; v < Compact.VocabularySize; v++) Assert.True(Math.Abs(ours[t][v] - theirs[t][v]) <= 1e-3, $"position {t}, id {v}");
            for (int v = Compact.VocabularySize; v < theirs[t].Length; v += 997) Assert.Equal(theirs[t][Compact.UnknownId], theirs[t][v], 4);
        }
    }

    [Fact]
    public void The_file_is_GGUF_3_with_llama_cpp_names_reversed_dimensions_and_the_converter_metadata()
    {
        var config = GgufParityFixture.Models[1].Config; // untied, llama3 rope
        foreach (var (type, fileType) in new[] { (ExportDType.F32, 0u), (ExportDType.F16, 1u), (ExportDType.Q8_0, 7u) })
        {
            var gguf = new GgufTestReader(fixture.PathOf(1, type));
            Assert.Equal(3u, gguf.Version);
            var md = gguf.Metadata;
            Assert.Equal("llama", md["general.architecture"]);
            Assert.Equal((uint)config.MaxSequenceLength, md["llama.context_length"]);
            Assert.Equal((uint)config.HiddenSize, md["llama.embedding_length"]);
            Assert.Equal((uint)config.NumLayers, md["llama.block_count"]);
            Assert.Equal((uint)config.IntermediateSize, md["llama.feed_forward_length"]);
            Assert.Equal((uint)config.NumHeads, md["llama.attention.head_count"]);
            Assert.Equal((uint)config.NumKeyValueHeads, md["llama.attention.head_count_kv"]);
            Assert.Equal((float)config.RopeTheta, md["llama.rope.freq_base"]);
            Assert.Equal((float)config.RmsNormEpsilon, md["llama.attention.layer_norm_rms_epsilon"]);
            Assert.Equal((uint)config.VocabSize, md["llama.vocab_size"]);
            Assert.Equal(fileType, md["general.file_type"]);
            Assert.Equal(2u, md["general.quantization_version"]);
            Assert.Equal("gpt2", md["tokenizer.ggml.model"]);
            Assert.Equal("gpt-2", md["tokenizer.ggml.pre"]);
            Assert.Equal(config.VocabSize, ((object[])md["tokenizer.ggml.tokens"]).Length);
            Assert.Equal(config.VocabSize, ((object[])md["tokenizer.ggml.token_type"]).Length);
            Assert.Equal(50000, ((object[])md["tokenizer.ggml.merges"]).Length);
            Assert.Equal((uint)Compact.EndOfTextId!, md["tokenizer.ggml.eos_token_id"]);
            Assert.Equal((uint)Compact.EndOfTextId!, md["tokenizer.ggml.bos_token_id"]);
            Assert.Equal(PromptTemplate.ChatMl.ChatTemplate, md["tokenizer.chat_template"]);

            var tensors = gguf.Tensors.ToDictionary(t => t.Name);
            ulong c = (ulong)config.HiddenSize, v = (ulong)config.VocabSize, ff = (ulong)config.IntermediateSize, kv = (ulong)(config.NumKeyValueHeads * config.HeadDim);
            Assert.Equal([c, v], tensors["token_embd.weight"].Dims);
            Assert.Equal([c, v], tensors["output.weight"].Dims);
            Assert.Equal([c], tensors["output_norm.weight"].Dims);
            Assert.Equal([c, kv], tensors["blk.1.attn_k.weight"].Dims);
            Assert.Equal([ff, c], tensors["blk.0.ffn_down.weight"].Dims);
            Assert.Equal([c, ff], tensors["blk.0.ffn_gate.weight"].Dims);
            Assert.Equal([(ulong)config.HeadDim / 2], tensors["rope_freqs.weight"].Dims);
            Assert.Equal(0u, tensors["blk.0.attn_norm.weight"].Type); // 1-D tensors stay F32
            Assert.Equal(0u, tensors["rope_freqs.weight"].Type);
            Assert.Equal(type switch { ExportDType.F16 => 1u, ExportDType.Q8_0 => 8u, _ => 0u }, tensors["blk.0.attn_q.weight"].Type);
            Assert.Equal(3 + 9 * config.NumLayers + 1, gguf.Tensors.Count); // embedding, output, final norm, rope_freqs
            Assert.All(gguf.Tensors, t => Assert.Equal(0ul, t.Offset % 32));
        }
        var tied = new GgufTestReader(fixture.PathOf(0, ExportDType.F32));
        Assert.DoesNotContain(tied.Tensors, t => t.Name == "output.weight"); // llama.cpp ties to token_embd
        Assert.DoesNotContain(tied.Tensors, t => t.Name == "rope_freqs.weight");
        var linear = new GgufTestReader(fixture.PathOf(2, ExportDType.F32));
        Assert.Equal("linear", linear.Metadata["llama.rope.scaling.type"]);
        Assert.Equal(2f, linear.Metadata["llama.rope.scaling.factor"]);
        Assert.Contains(linear.Tensors, t => t.Name == "blk.0.attn_q.bias");
    }

    [Fact]
    public void Rope_freqs_hold_the_reciprocal_of_transformers_llama3_scaling_per_frequency()
    {
        var gguf = new GgufTestReader(fixture.PathOf(1, ExportDType.F32));
        var info = gguf.Tensors.Single(t => t.Name == "rope_freqs.weight");
        using var file = new BinaryReader(File.OpenRead(fixture.PathOf(1, ExportDType.F32)));
        file.BaseStream.Position = gguf.DataStart + (long)info.Offset;
        var s = ParityModels.Llama3Scaling;
        int d = ParityModels.DefaultShape.HeadDim;
        for (int i = 0; i < d / 2; i++)
        {
            // transformers' _compute_llama3_parameters, written out independently.
            double inv = Math.Pow(ParityModels.DefaultShape.RopeTheta, -2.0 * i / d), wavelength = 2 * Math.PI / inv;
            double low = s.OriginalMaxPositionEmbeddings / s.LowFrequencyFactor, high = s.OriginalMaxPositionEmbeddings / s.HighFrequencyFactor;
            double scaled = wavelength > low ? inv / s.Factor : inv;
            if (wavelength >= high && wavelength <= low)
            {
                double smooth = (s.OriginalMaxPositionEmbeddings / wavelength - s.LowFrequencyFactor) / (s.HighFrequencyFactor - s.LowFrequencyFactor);
                scaled = (1 - smooth) * scaled / s.Factor + smooth * scaled;
            }
            Assert.Equal(inv / scaled, file.ReadSingle(), 5);
        }
    }

    [Fact]
    public void The_chat_template_written_into_the_file_renders_in_llama_cpp_as_the_library_renders_it()
    {
        using var llama = new LlamaCppModel(fixture.PathOf(0, ExportDType.F32));
        var template = new LLamaTemplate(llama.Weights) { AddAssistant = true };
        template.Add("system", "You are kind.").Add("user", "Is honesty important?");
        var rendered = System.Text.Encoding.UTF8.GetString(template.Apply());
        Assert.Equal(ChatTemplates.Render(ChatTemplateFamily.ChatMl, [("system", "You are kind."), ("user", "Is honesty important?")]), rendered);
    }

    /// <summary>The CLI's <c>gguf:PATH</c> back-end: LLamaSharp's stateless executor as an <see cref="IChatClient"/>.</summary>
    [Fact]
    public async Task The_exported_model_answers_through_the_LLamaSharp_chat_client_the_gguf_back_end_uses()
    {
        LlamaCppModel.Configure();
        var parameters = new ModelParams(fixture.PathOf(0, ExportDType.Q8_0)) { ContextSize = 192, GpuLayerCount = 0, Threads = 2 };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        var client = new StatelessExecutor(weights, parameters).AsChatClient();
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Is it fair to keep money you found on the street?")],
            new ChatOptions { MaxOutputTokens = 8, Temperature = 0 });
        Assert.Equal(ChatRole.Assistant, response.Messages[^1].Role);
        Assert.NotNull(response.Text);
    }
}
