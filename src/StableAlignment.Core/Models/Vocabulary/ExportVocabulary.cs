using Microsoft.ML.Tokenizers;

namespace StableAlignment.Core.Models;

/// <summary>GGUF's token types (<c>llama_token_type</c>), which Hugging Face's added tokens map onto.</summary>
internal enum GgufTokenType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>
/// The vocabulary an export writes for a model: token strings and types by exported id, the merges, the special ids,
/// and, when the exported ids are not the model's rows one for one, which model row each exported id reads.
/// </summary>
internal sealed record ExportVocabulary(
    IReadOnlyList<string> Tokens,
    IReadOnlyList<GgufTokenType> Types,
    IReadOnlyList<string> Merges,
    string PreTokenizer,
    int? BeginOfTextId,
    int? EndOfTextId,
    int? UnknownId,
    int[]? RowSource)
{
    /// <summary>The placeholder text of a compact vocabulary's unknown id: not a GPT-2 token, so it never collides.</summary>
    public const string UnknownToken = "<|unk|>";

    /// <summary>Whether the ids are GPT-2's byte-level alphabet with its regex, so a GPT-2 style <c>tokenizer.json</c> can describe them.</summary>
    public bool IsGpt2Style => PreTokenizer == "gpt-2";

    public static ExportVocabulary For(Tokenizer tokenizer, string? tokenizerFile, VocabularyLayout layout, int modelVocabularySize)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var vocabulary = tokenizer is CompactVocabularyTokenizer compact
            ? ForCompact(compact, Source(compact.Inner, tokenizerFile), layout)
            : Plain(Source(tokenizer, tokenizerFile));
        if (vocabulary.RowSource is null && vocabulary.Tokens.Count != modelVocabularySize)
        {
            if (vocabulary.Tokens.Count > modelVocabularySize)
                throw new ArgumentException($"The tokenizer has {vocabulary.Tokens.Count} tokens but the model only {modelVocabularySize} embedding rows.", nameof(tokenizer));
            // As llama.cpp's converter does: rows beyond the tokenizer (vocab_size padded to a multiple) become unused tokens.
            var tokens = vocabulary.Tokens.ToList();
            var types = vocabulary.Types.ToList();
            for (int i = tokens.Count; i < modelVocabularySize; i++)
            {
                tokens.Add($"[PAD{i}]");
                types.Add(GgufTokenType.Unused);
            }
            vocabulary = vocabulary with { Tokens = tokens, Types = types };
        }
        return vocabulary;
    }

    private static ByteLevelBpeVocabulary Source(Tokenizer tokenizer, string? tokenizerFile) => tokenizer switch
    {
        TiktokenTokenizer t when ReferenceEquals(t, ModelTokenizers.Gpt2()) => ByteLevelBpeVocabulary.Gpt2,
        BpeTokenizer when tokenizerFile is not null && tokenizerFile.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            => ByteLevelBpeVocabulary.FromHuggingFaceJson(tokenizerFile),
        BpeTokenizer => throw new ArgumentException(
            "A BPE tokenizer loaded from tokenizer.json exports only with ModelExportOptions.TokenizerFile naming that file.", nameof(tokenizerFile)),
        TiktokenTokenizer => throw new NotSupportedException("Of tiktoken tokenizers only GPT-2's (ModelTokenizers.Gpt2()) exports; its ranks are read from the package that ships them."),
        _ => throw new NotSupportedException($"Tokenizers of type {tokenizer.GetType().Name} do not export; GPT-2 (ModelTokenizers.Gpt2()), a byte-level BPE tokenizer.json and compact vocabularies over them do."),
    };

    private static ExportVocabulary Plain(ByteLevelBpeVocabulary source) => new(
        source.Tokens,
        [.. Enumerable.Range(0, source.Tokens.Count).Select(i => source.SpecialIds.Contains(i) ? GgufTokenType.Control : GgufTokenType.Normal)],
        source.Merges, source.PreTokenizer, source.BeginOfTextId ?? source.EndOfTextId, source.EndOfTextId, null, null);

    private static ExportVocabulary ForCompact(CompactVocabularyTokenizer compact, ByteLevelBpeVocabulary inner, VocabularyLayout layout)
    {
        var tokens = new List<string>(compact.VocabularySize);
        var types = new List<GgufTokenType>(compact.VocabularySize);
        var rows = new List<int>();
        for (int id = 0; id < compact.VocabularySize; id++)
        {
            rows.Add(id);
            if (compact.ToInnerId(id) is int innerId)
            {
                tokens.Add(inner.Tokens[innerId]);
                types.Add(inner.SpecialIds.Contains(innerId) ? GgufTokenType.Control : GgufTokenType.Normal);
            }
            else
            {
                tokens.Add(UnknownToken);
                types.Add(GgufTokenType.Unknown);
            }
        }
        if (layout == VocabularyLayout.FullInner)
        {
            for (int innerId = 0; innerId < inner.Tokens.Count; innerId++)
            {
                if (compact.ToCompactId(innerId) != compact.UnknownId) continue;
                tokens.Add(inner.Tokens[innerId]);
                types.Add(inner.SpecialIds.Contains(innerId) ? GgufTokenType.Control : GgufTokenType.Normal);
                rows.Add(compact.UnknownId);
            }
        }
        int? eos = compact.EndOfTextId;
        int? bos = inner.BeginOfTextId is int b && compact.ToCompactId(b) is int cb && cb != compact.UnknownId ? cb : eos;
        return new ExportVocabulary(tokens, types, inner.Merges, inner.PreTokenizer, bos, eos, compact.UnknownId,
            layout == VocabularyLayout.FullInner ? [.. rows] : null);
    }
}
