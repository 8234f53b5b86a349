using Microsoft.ML.Tokenizers;
using StableAlignment.Core.Models;
using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace StableAlignment.Core.Tests.Models;

/// <summary>
/// Random-weight models of the default run's shape (hidden 128, 2 layers, 4 heads, 2 key/value heads, context 192) over
/// a compact GPT-2 vocabulary of a few thousand ids, and the 20 prompts the llama.cpp parity is measured on.
/// </summary>
internal static class ParityModels
{
    public static readonly string[] Prompts =
    [
        "### Instruction:\nIs it fair to keep money you found on the street?\n\n### Response:",
        "The committee met on 12 March 2024 and voted 7 to 2 in favour.",
        "She said, \"I'll be there by noon,\" but she wasn't.",
        "Honesty builds trust; deception erodes it over time.",
        "List three reasons why people volunteer:\n1. community\n2. purpose\n3. friends",
        "What should you do if a friend asks you to lie for them?",
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "It's important to respect other people's privacy, even online.",
        "In 1969, humans first walked on the Moon; it was a giant leap.",
        "Please explain the difference between empathy and sympathy.",
        "A good neighbour helps without being asked and listens when needed.",
        "We're running late, so let's take the 8:15 train instead of the bus.",
        "Rules exist to protect everyone, but they can be unfair sometimes.",
        "Kindness costs nothing, yet it's worth more than gold to many.",
        "Why do some people find it hard to apologise after a mistake?",
        "The recipe needs 2 cups of flour, 3 eggs and a pinch of salt.",
        "If you break something in a shop, you should tell the owner.",
        "Teachers, nurses and firefighters serve their communities every day.",
        "Stealing is wrong even when nobody is watching you.",
        "Could you summarise the main argument in two short sentences? The author claims that small daily acts of honesty, "
        + "repeated over years, matter more to a community's trust than any single grand gesture, and that people notice them.",
    ];

    private static readonly Lazy<CompactVocabularyTokenizer> SharedTokenizer = new(BuildTokenizer);

    /// <summary>The compact vocabulary: the prompts plus the texts of GPT-2 tokens 256..3499, so it holds a few thousand ids.</summary>
    public static CompactVocabularyTokenizer Tokenizer => SharedTokenizer.Value;

    private static CompactVocabularyTokenizer BuildTokenizer()
    {
        var gpt2 = ModelTokenizers.Gpt2();
        var words = Enumerable.Range(256, 3244).Select(id => gpt2.Decode([id])).Where(w => !w.Contains('\uFFFD', StringComparison.Ordinal));
        return CompactVocabularyTokenizer.Build(gpt2, Prompts.Concat([string.Join(" ", words)]));
    }

    public static CausalLanguageModelConfig DefaultShape => new()
    {
        VocabSize = Tokenizer.VocabularySize, HiddenSize = 128, IntermediateSize = 352, NumLayers = 2, NumHeads = 4,
        NumKeyValueHeads = 2, MaxSequenceLength = 192, TieWordEmbeddings = true,

    };

    /// <summary>
    /// Llama 3 rope scaling with an original context of 16: wavelengths above 16 are divided by the factor, those between
    /// 4 and 16 interpolated, so the prompts (up to 40 tokens) and the generations run well past the low-frequency wavelength.
    /// </summary>
    public static RopeScaling Llama3Scaling => new()
    {
        Kind = RopeScalingKind.Llama3, Factor = 8, LowFrequencyFactor = 1, HighFrequencyFactor = 4, OriginalMaxPositionEmbeddings = 16,
    };

    /// <summary>
    /// A model with random weights, briefly fitted (see <see cref="Fit"/>); biases and norm scales (zero and one at
    /// creation) get random values first so a dropped or misplaced one would show.
    /// </summary>
    public static CausalLanguageModel Create(CausalLanguageModelConfig config, long seed)
    {
        var model = new CausalLanguageModel(config, seed);
        using (no_grad())
        {
            var generator = new Generator((ulong)seed + 1);
            foreach (var (name, p) in model.named_parameters())
            {
                if (name.EndsWith(".bias", StringComparison.Ordinal)) p.copy_(randn(p.shape, generator: generator) * 0.1);
                else if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.copy_(1 + randn(p.shape, generator: generator) * 0.1);
            }
        }
        Fit(model, steps: 30);
        return model;
    }

    /// <summary>
    /// Thirty next-token steps on the prompts, so the model predicts with a trained model's confidence and logits of a few
    /// units rather than a random one's near-ties of a few hundredths (which any quantisation flips): untrained, Q8_0's
    /// argmax agreement sat at 92-97% whatever the initial scale; after these steps it is 99-100%.
    /// </summary>
    private static void Fit(CausalLanguageModel model, int steps)
    {
        var sequences = PromptIds(Tokenizer);
        int length = sequences.Max(s => s.Length);
        var ids = new long[sequences.Count * length];
        var mask = new float[sequences.Count * length];
        for (int i = 0; i < sequences.Count; i++)
            for (int t = 0; t < sequences[i].Length; t++)
            {
                ids[i * length + t] = sequences[i][t];
                mask[i * length + t] = t + 1 < sequences[i].Length ? 1 : 0;
            }
        using var input = tensor(ids, [sequences.Count, length], dtype: ScalarType.Int64);
        using var weights = tensor(mask, [sequences.Count, length]);
        using var targets = input.roll(-1, 1);
        // TorchSharp's optim.AdamW defaults (beta2 0.99), in the optimiser that keeps its scalars alive.
        using var optimizer = new AdamW(model.parameters(), 1e-2, 0.9, 0.99, 1e-8, 0);
        model.train();
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var logits = model.forward(input);
            var nll = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[2]), targets.reshape(-1), reduction: nn.Reduction.None);
            var loss = (nll * weights.reshape(-1)).sum() / weights.sum();
            loss.backward();
            optimizer.step();
        }
        model.eval();
    }

    /// <summary>
    /// What llama.cpp makes of <paramref name="text"/> with a compact vocabulary's GGUF (the rule docs/models.md states):
    /// inner tokens in the vocabulary keep their compact ids; one outside it becomes its printable ASCII characters
    /// ('!'..'~') that are single tokens of the vocabulary, in order, and nothing else.
    /// </summary>
    public static List<int> LlamaCppTokensOfCompactLayout(CompactVocabularyTokenizer compact, string text)
    {
        var inner = compact.Inner;
        var expected = new List<int>();
        foreach (var id in inner.EncodeToIds(text))
        {
            int c = compact.ToCompactId(id);
            if (c != compact.UnknownId)
            {
                expected.Add(c);
                continue;
            }
            foreach (var ch in inner.Decode([id]).Where(ch => ch is >= '!' and <= '~'))
            {
                var single = inner.EncodeToIds(ch.ToString());
                if (single.Count == 1 && compact.ToCompactId(single[0]) is var s && s != compact.UnknownId) expected.Add(s);
            }
        }
        return expected;
    }

    public static IReadOnlyList<int[]> PromptIds(Tokenizer tokenizer) => [.. Prompts.Select(p => tokenizer.EncodeToIds(p).ToArray())];

    /// <summary>TorchSharp's logits <c>[T][V]</c> for one token sequence.</summary>
    public static float[][] Logits(CausalLanguageModel model, IReadOnlyList<int> tokens)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = tensor(tokens.Select(t => (long)t).ToArray(), dtype: ScalarType.Int64).unsqueeze(0);
        var flat = model.forward(ids).squeeze(0).contiguous().data<float>().ToArray();
        int v = (int)model.Config.VocabSize;
        return [.. Enumerable.Range(0, tokens.Count).Select(t => flat[(t * v)..((t + 1) * v)])];
    }

    /// <summary>TorchSharp's greedy continuation (argmax, lowest id on ties), decoding with the model's key/value cache.</summary>
    public static List<int> Greedy(CausalLanguageModel model, IReadOnlyList<int> prompt, int count)
    {
        using var noGrad = no_grad();
        using var cache = model.CreateCache();
        var output = new List<int>();
        var next = prompt.Select(t => (long)t).ToArray();
        for (int i = 0; i < count; i++)
        {
            using var scope = NewDisposeScope();
            var logits = model.Logits(tensor(next, dtype: ScalarType.Int64).unsqueeze(0), cache);
            int token = LlamaCppModel.ArgMax(logits[0, -1].contiguous().data<float>().ToArray());
            output.Add(token);
            next = [token];
        }
        return output;
    }
}
