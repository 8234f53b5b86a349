using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace StableAlignment.Core.Models;

/// <summary>Tokenizers for <see cref="CausalLanguageModel"/>: GPT-2 BPE offline by default, or a file the user supplies.</summary>
public static partial class ModelTokenizers
{
    // Built once: loading the embedded vocabulary and merges takes a while, and the tokenizer is safe to share.
    private static readonly Lazy<Tokenizer> SharedGpt2 = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    /// <summary>
    /// The GPT-2 byte-level BPE tokenizer (50257 ids, <c>&lt;|endoftext|&gt;</c> = 50256), from embedded data: no
    /// download. One shared instance, created on first use; it is also the library's default tokenizer.
    /// </summary>
    public static Tokenizer Gpt2() => SharedGpt2.Value;

    /// <summary>
    /// Loads a tokenizer file: a Hugging Face <c>tokenizer.json</c> of a BPE model (byte-level, as GPT-2, LLaMA-3,
    /// Qwen2 and SmolLM use) or a SentencePiece <c>.model</c> file (LLaMA-2 style).
    /// </summary>
    /// <param name="path">Path of <c>tokenizer.json</c> or <c>*.model</c>.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="NotSupportedException">The file describes a tokenizer Microsoft.ML.Tokenizers cannot build.</exception>
    public static Tokenizer FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Tokenizer file '{path}' does not exist.", path);
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return FromHuggingFaceJson(File.ReadAllText(path), path);
        using var stream = File.OpenRead(path);
        return LlamaTokenizer.Create(stream);
    }

    private static BpeTokenizer FromHuggingFaceJson(string json, string path)
    {
        using var doc = JsonDocument.Parse(json);
        if (!doc.RootElement.TryGetProperty("model", out var model) || !model.TryGetProperty("type", out var type) || type.GetString() != "BPE")
            throw new NotSupportedException($"'{path}': only BPE models in tokenizer.json are supported.");

        var vocabulary = model.GetProperty("vocab").EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())).ToList();
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        if (doc.RootElement.TryGetProperty("added_tokens", out var added))
            foreach (var token in added.EnumerateArray())
                special[token.GetProperty("content").GetString()!] = token.GetProperty("id").GetInt32();

        // Merges are either "a b" strings (older files) or ["a", "b"] pairs (newer files).
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.Array ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString()!)
            .ToList();
        var byteLevel = json.Contains("\"ByteLevel\"", StringComparison.Ordinal);
        return BpeTokenizer.Create(new BpeOptions(vocabulary)
        {
            Merges = merges,
            SpecialTokens = special,
            ByteLevel = byteLevel,
            PreTokenizer = byteLevel ? new RegexPreTokenizer(Gpt2Split(), special) : PreTokenizer.CreateWhiteSpace(special),
        });
    }

    // GPT-2's pre-tokenisation pattern, which byte-level BPE vocabularies are trained with.
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex Gpt2Split();

    /// <summary>The end-of-text id of <paramref name="tokenizer"/>, or null when it has none that can be found.</summary>
    internal static int? EndOfTextId(Tokenizer tokenizer)
    {
        if (tokenizer is SentencePieceTokenizer sp) return sp.EndOfSentenceId;
        // A marker outside a compact vocabulary encodes to its single UnknownId, which must not pass for end-of-text.
        if (tokenizer is CompactVocabularyTokenizer compact) return compact.EndOfTextId;
        foreach (var marker in new[] { "<|endoftext|>", "<|end_of_text|>", "<|im_end|>", "</s>" })
        {
            var ids = tokenizer.EncodeToIds(marker);
            if (ids.Count == 1) return ids[0];
        }
        return null;
    }
}
