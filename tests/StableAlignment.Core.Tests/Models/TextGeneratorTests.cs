using FsCheck.Xunit;
using Microsoft.Extensions.AI;
using StableAlignment.Core.Models;
using static TorchSharp.torch;
using StableAlignment.Core.ChatClients;

namespace StableAlignment.Core.Tests.Models;

public class TextGeneratorTests
{
    // GPT-2 vocabulary so real text round-trips, but a width of 16 keeps it fast.
    private static readonly CausalLanguageModelConfig Gpt2Tiny = new()
    {
        VocabSize = 50257, HiddenSize = 16, IntermediateSize = 32, NumLayers = 2, NumHeads = 4, NumKeyValueHeads = 2, MaxSequenceLength = 96,
        InitializerRange = 0.5,
    };

    [Theory]
    [InlineData(0.0, 0, 1.0)]
    [InlineData(1.3, 0, 1.0)]
    [InlineData(0.9, 5, 0.8)]
    public void Generation_with_the_cache_equals_generation_without_it(double temperature, int topK, double topP)
    {
        using var model = new CausalLanguageModel(CausalLanguageModelTests.Tiny with { InitializerRange = 0.5 }, seed: 7);
        var generator = new TextGenerator(model, ModelTokenizers.Gpt2(), endOfTextId: 0);
        var options = new GenerationOptions { MaxNewTokens = 20, Temperature = temperature, TopK = topK, TopP = topP, Seed = 11 };
        var withCache = new List<int>();
        var without = new List<int>();
        generator.GenerateIds([5, 9, 2], options, withCache, null, default);
        generator.GenerateIds([5, 9, 2], options with { UseKeyValueCache = false }, without, null, default);
        Assert.NotEmpty(withCache);
        Assert.Equal(without, withCache);
    }

    [Fact]
    public void Same_seed_gives_the_same_text_and_the_budget_is_respected()
    {
        using var model = new CausalLanguageModel(Gpt2Tiny, seed: 8);
        var generator = new TextGenerator(model, ModelTokenizers.Gpt2());
        Assert.Equal(50256, generator.EndOfTextId);
        var options = new GenerationOptions { MaxNewTokens = 12, Temperature = 1.0, Seed = 3 };
        var a = generator.Generate("The society agreed that", options);
        var b = generator.Generate("The society agreed that", options);
        Assert.Equal(a.Text, b.Text);
        Assert.Equal(a.FinishReason, b.FinishReason);
        Assert.Equal(a.TokenIds, b.TokenIds);
        Assert.True(a.TokenIds.Count <= 12);
        if (a.TokenIds.Count == 12) Assert.Equal(GenerationFinishReason.Length, a.FinishReason);
    }

    [Fact]
    public void Stop_sequence_cuts_the_text_before_its_first_occurrence()
    {
        using var model = new CausalLanguageModel(Gpt2Tiny, seed: 9);
        var generator = new TextGenerator(model, ModelTokenizers.Gpt2());
        var free = generator.Generate("Question: is honesty good?", new GenerationOptions { MaxNewTokens = 24 });
        Assert.True(free.Text.Length >= 6, $"need some text to cut, got '{free.Text}'");
        // Stop on a piece from the middle of the free-running output: the stopped text is what came before it.
        var stop = free.Text.Substring(free.Text.Length / 2, 3);
        var cut = generator.Generate("Question: is honesty good?", new GenerationOptions { MaxNewTokens = 24, StopSequences = [stop] });
        Assert.Equal(free.Text[..free.Text.IndexOf(stop, StringComparison.Ordinal)], cut.Text);
        Assert.Equal(GenerationFinishReason.Stop, cut.FinishReason);
    }

    /// <summary>Scoring windows score every continuation token once, fit the model, and give each token enough context.</summary>
    [Property(MaxTest = 300)]
    public bool Scoring_windows_cover_each_continuation_token_once_and_fit_the_model(int seed)
    {
        var rng = new Random(seed);
        int maxInput = rng.Next(1, 40);
        int length = rng.Next(2, 200);
        int continuationStart = rng.Next(1, length);
        var windows = TextGenerator.ScoringWindows(length, continuationStart, maxInput).ToList();
        // While the continuation fits, one window: the last maxInput + 1 tokens, as lm-evaluation-harness truncates.
        int overflow = Math.Max(0, length - 1 - maxInput);
        bool oneWindow = overflow < continuationStart;
        var timesScored = new int[length];
        foreach (var (from, to, start) in windows)
        {
            if (from < 0 || to > length || to - from - 1 > maxInput || start < 1 || from + start > to) return false;
            for (int p = from + start; p < to; p++)
            {
                timesScored[p]++;
                // When the continuation alone overflows, every token still sees half the model's context (or all before it).
                if (!oneWindow && p - from < Math.Min(p, Math.Max(1, maxInput / 2))) return false;
            }
        }
        return Enumerable.Range(0, length).All(p => timesScored[p] == (p >= continuationStart ? 1 : 0))
            && (!oneWindow || windows.SequenceEqual([(overflow, length, continuationStart - overflow)]));
    }

    [Fact]
    public void A_continuation_longer_than_the_context_is_the_sum_of_its_windows_scored_directly()
    {
        using var model = new CausalLanguageModel(Gpt2Tiny with { MaxSequenceLength = 8 }, seed: 12);
        var generator = new TextGenerator(model, ModelTokenizers.Gpt2());
        const string context = "Question: what should I do?";
        const string continuation = " Talk to someone you trust, take a short walk, and write down what is bothering you tonight.";
        var score = generator.ScoreContinuations([(context, continuation)])[0];

        var contextIds = ModelTokenizers.Gpt2().EncodeToIds(context);
        var all = ModelTokenizers.Gpt2().EncodeToIds(context + continuation).Select(t => (long)t).ToArray();
        Assert.True(all.Length - contextIds.Count > 8, "the continuation must not fit the context of 8 tokens");
        // Oracle: each window is one plain forward pass with a float64 log-softmax.
        double expected = 0;
        foreach (var (from, to, start) in TextGenerator.ScoringWindows(all.Length, contextIds.Count, 8))
        {
            using var ids = tensor(all[from..(to - 1)], dtype: ScalarType.Int64).unsqueeze(0);
            using var logp = nn.functional.log_softmax(model.forward(ids).to_type(ScalarType.Float64), -1);
            for (int t = start - 1; t < to - from - 1; t++) expected += logp[0, t, all[from + t + 1]].item<double>();
        }
        Assert.Equal(all.Length - contextIds.Count, score.TokenCount);
        Assert.Equal(expected, score.LogLikelihood, 3);
    }

    [Fact]
    public async Task Continuation_scores_match_a_direct_log_softmax_and_do_not_depend_on_the_batch()
    {
        using var model = new CausalLanguageModel(Gpt2Tiny, seed: 10);
        var generator = new TextGenerator(model, ModelTokenizers.Gpt2());
        (string, string)[] requests = [("The answer is", " yes"), ("A much longer context that pads the other rows of the batch", " and a longer continuation too"), ("", "Hello")];
        var batched = generator.ScoreContinuations(requests, batchSize: 3);
        var alone = requests.Select(r => generator.ScoreContinuations([r], batchSize: 1)[0]).ToList();

        for (var i = 0; i < requests.Length; i++)
        {
            Assert.Equal(alone[i].TokenCount, batched[i].TokenCount);
            Assert.Equal(alone[i].LogLikelihood, batched[i].LogLikelihood, 3);
            Assert.Equal(alone[i].IsGreedy, batched[i].IsGreedy);
        }

        // Oracle for the first request: one full forward, float64 log-softmax, positions picked by hand.
        var context = ModelTokenizers.Gpt2().EncodeToIds("The answer is");
        var continuation = ModelTokenizers.Gpt2().EncodeToIds(" yes");
        var all = context.Concat(continuation).Select(t => (long)t).ToArray();
        using var ids = tensor(all, dtype: ScalarType.Int64).unsqueeze(0);
        using var logp = nn.functional.log_softmax(model.forward(ids).to_type(ScalarType.Float64), -1);
        var expected = 0.0;
        for (var j = 0; j < continuation.Count; j++)
            expected += logp[0, context.Count - 1 + j, all[context.Count + j]].item<double>();
        Assert.Equal(continuation.Count, batched[0].TokenCount);
        Assert.Equal(expected, batched[0].LogLikelihood, 3);
        Assert.True(batched[0].LogLikelihood < 0);

        // The evaluation harness's interface gives the same numbers.
        var viaHarness = await generator.ScoreAsync([.. requests.Select(r => Core.Evaluation.LikelihoodRequest.Create(r.Item1, r.Item2))], default);
        for (var i = 0; i < requests.Length; i++)
        {
            Assert.Equal(batched[i].LogLikelihood, viaHarness[i].LogLikelihood, 3);
            Assert.Equal(batched[i].TokenCount, viaHarness[i].TokenCount);
        }
    }

    [Fact]
    public async Task Chat_client_answers_a_sandbox_prompt()
    {
        using var model = new CausalLanguageModel(Gpt2Tiny, seed: 12);
        using var client = new LanguageModelChatClient(new TextGenerator(model, ModelTokenizers.Gpt2()), "tiny");
        ChatMessage[] messages =
        [
            new(ChatRole.System, "You are a member of a society that values honesty and kindness."),
            new(ChatRole.User, "Question: How should I respond when a friend asks me to lie for them?"),
        ];
        var options = new ChatOptions { MaxOutputTokens = 16, Temperature = 0.8f, Seed = 5 };
        var response = await client.GetResponseAsync(messages, options);
        var again = await client.GetResponseAsync(messages, options);

        Assert.Equal(ChatRole.Assistant, response.Messages.Single().Role);
        Assert.False(string.IsNullOrWhiteSpace(response.Text));
        Assert.Equal(response.Text, again.Text);
        Assert.InRange(response.Usage!.OutputTokenCount!.Value, 1, 16);
        Assert.Equal("tiny", client.GetService<ChatClientMetadata>()!.DefaultModelId);
    }

    [Fact]
    public void Chat_prompt_uses_the_alpaca_template()
    {
        var prompt = LanguageModelChatClient.RenderPrompt(
            [new(ChatRole.System, "Be kind."), new(ChatRole.User, "Hi?"), new(ChatRole.Assistant, "Hello."), new(ChatRole.User, "Why?")], null);
        Assert.Equal("Be kind.\n\n### Instruction:\nHi?\n\n### Response:\nHello.\n\n### Instruction:\nWhy?\n\n### Response:\n", prompt);
    }

    [Fact]
    public void Sampler_keeps_exactly_the_top_k_and_the_smallest_nucleus()
    {
        var rng = new Random(1);
        for (var trial = 0; trial < 200; trial++)
        {
            var logits = Enumerable.Range(0, 12).Select(_ => (float)(rng.NextDouble() * 6 - 3)).ToArray();
            var k = rng.Next(1, 13);
            var p = 0.05 + rng.NextDouble() * 0.95;
            var options = new GenerationOptions { Temperature = 0.7, TopK = k, TopP = p };
            var dist = TokenSampler.Distribution(logits, options);

            // Oracle: softmax at temperature, keep top k, then the shortest descending prefix reaching p.
            var soft = logits.Select(l => Math.Exp(l / 0.7)).ToArray();
            var order = Enumerable.Range(0, 12).OrderByDescending(i => soft[i]).ThenBy(i => i).Take(k).ToList();
            var z = order.Sum(i => soft[i]);
            var kept = new List<int>();
            var cumulative = 0.0;
            foreach (var i in order)
            {
                kept.Add(i);
                cumulative += soft[i] / z;
                if (cumulative >= p) break;
            }
            var zk = kept.Sum(i => soft[i]);
            for (var i = 0; i < 12; i++)
                Assert.Equal(kept.Contains(i) ? soft[i] / zk : 0.0, dist[i], 9);
        }
    }

    [Fact]
    public void Sampler_frequencies_follow_the_distribution()
    {
        float[] logits = [0f, 1f, 2f, -1f];
        var options = new GenerationOptions { Temperature = 1.0 };
        var expected = TokenSampler.Distribution(logits, options);
        var counts = new int[4];
        var rng = new Random(2);
        const int n = 20000;
        for (var i = 0; i < n; i++) counts[TokenSampler.Sample(logits, options, rng)]++;
        for (var i = 0; i < 4; i++) Assert.InRange(counts[i] / (double)n, expected[i] - 0.015, expected[i] + 0.015);
        Assert.Equal(2, TokenSampler.Sample(logits, options with { Temperature = 0 }, rng));
    }

    [Fact]
    public void The_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_tokens_already_generated()
    {
        float[] logits = [2f, -1f, 0.5f, 3f];
        TokenSampler.Penalise(logits, new HashSet<int> { 0, 1, 9 }, 2f);
        Assert.Equal([1f, -2f, 0.5f, 3f], logits);
        // Greedy decoding picks the runner-up once the leader has been generated and the penalty pulls it below.
        var penalised = new GenerationOptions { RepetitionPenalty = 1.1 };
        Assert.Equal(0, TokenSampler.Sample(new float[] { 3f, 2.9f }, penalised, new Random(1), new HashSet<int>()));
        Assert.Equal(1, TokenSampler.Sample(new float[] { 3f, 2.9f }, penalised, new Random(1), new HashSet<int> { 0 }));
        Assert.Equal(0, TokenSampler.Sample(new float[] { 3f, 2.9f }, new GenerationOptions(), new Random(1), new HashSet<int> { 0 }));
    }

    [Fact]
    public void Hugging_Face_tokenizer_json_builds_a_bpe_tokenizer()
    {
        using var file = new TempFile("""
            {"model":{"type":"BPE","vocab":{"a":0,"b":1,"c":2,"ab":3,"abc":4},"merges":["a b",["ab","c"]]},
             "added_tokens":[{"id":5,"content":"</s>"}]}
            """, ".json");
        var tokenizer = ModelTokenizers.FromFile(file.Path);
        Assert.Equal([4, 3, 2], tokenizer.EncodeToIds("abc ab c"));
        Assert.Equal(5, ModelTokenizers.EndOfTextId(tokenizer));
    }

    [Fact]
    public void Invalid_generation_options_name_the_option()
    {
        Assert.Equal("TopP", Assert.Throws<ArgumentException>(() => new GenerationOptions { TopP = 0 }.Validate()).ParamName);
        Assert.Equal("MaxNewTokens", Assert.Throws<ArgumentException>(() => new GenerationOptions { MaxNewTokens = 0 }.Validate()).ParamName);
    }
}
