using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;

namespace StableAlignment.Core.Models;

/// <summary>Hugging Face's tokenizer files: <c>tokenizer.json</c>, <c>tokenizer_config.json</c> (with <c>chat_template</c>).</summary>
internal static class TokenizerFiles
{
    public const string TokenizerFileName = ModelCheckpoint.HuggingFaceTokenizerFileName;
    public const string ConfigFileName = "tokenizer_config.json";
    public const string CompactVocabularyFileName = ModelCheckpoint.CompactVocabularyFileName;

    /// <summary>
    /// Writes the tokenizer files of <paramref name="tokenizer"/> into <paramref name="directory"/>: a generated
    /// GPT-2 style <c>tokenizer.json</c>, a copy of the source <c>tokenizer.json</c>, or (compact layout) the compact
    /// vocabulary; always a <c>tokenizer_config.json</c> carrying the chat template.
    /// </summary>
    public static void Write(string directory, Tokenizer tokenizer, ExportVocabulary vocabulary, ModelExportOptions options, int maxLength)
    {
        JsonObject config;
        if (tokenizer is CompactVocabularyTokenizer compact && vocabulary.RowSource is null)
        {
            compact.Save(Path.Combine(directory, CompactVocabularyFileName));
            config = new JsonObject { ["tokenizer_class"] = "CompactVocabularyTokenizer" };
        }
        else if (vocabulary.IsGpt2Style && tokenizer is CompactVocabularyTokenizer or TiktokenTokenizer)
        {
            File.WriteAllText(Path.Combine(directory, TokenizerFileName), Gpt2StyleJson(vocabulary).ToJsonString());
            config = new JsonObject { ["tokenizer_class"] = "PreTrainedTokenizerFast" };
        }
        else
        {
            var source = options.TokenizerFile ?? throw new ArgumentException("Set ModelExportOptions.TokenizerFile to the tokenizer.json the tokenizer was loaded from.", nameof(options));
            File.Copy(source, Path.Combine(directory, TokenizerFileName), overwrite: true);
            var sourceConfig = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(source))!, ConfigFileName);
            config = File.Exists(sourceConfig) && JsonNode.Parse(File.ReadAllText(sourceConfig)) is JsonObject o ? o : [];
        }

        string? Text(int? id) => id is int i ? vocabulary.Tokens[i] : null;
        config["bos_token"] ??= Text(vocabulary.BeginOfTextId);
        config["eos_token"] ??= Text(vocabulary.EndOfTextId);
        if (vocabulary.UnknownId is int unk) config["unk_token"] ??= vocabulary.Tokens[unk];
        config["add_bos_token"] ??= false;
        config["add_eos_token"] ??= false;
        config["clean_up_tokenization_spaces"] ??= false;
        config["model_max_length"] = maxLength;
        if (options.ChatTemplate is { } template) config["chat_template"] = template;
        File.WriteAllText(Path.Combine(directory, ConfigFileName), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>A byte-level BPE <c>tokenizer.json</c> with GPT-2's pre-tokeniser and decoder.</summary>
    private static JsonObject Gpt2StyleJson(ExportVocabulary vocabulary)
    {
        static JsonObject ByteLevel(bool prefixSpace, bool trimOffsets) => new()
        {
            ["type"] = "ByteLevel", ["add_prefix_space"] = prefixSpace, ["trim_offsets"] = trimOffsets, ["use_regex"] = true,
        };
        var vocab = new JsonObject();
        var added = new JsonArray();
        for (int id = 0; id < vocabulary.Tokens.Count; id++)
        {
            vocab[vocabulary.Tokens[id]] = id;
            if (vocabulary.Types[id] is GgufTokenType.Control or GgufTokenType.Unknown)
                added.Add(new JsonObject
                {
                    ["id"] = id, ["content"] = vocabulary.Tokens[id], ["single_word"] = false, ["lstrip"] = false,
                    ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
                });
        }
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = ByteLevel(false, true),
            ["post_processor"] = ByteLevel(true, false),
            ["decoder"] = ByteLevel(true, true),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "", ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray([.. vocabulary.Merges.Select(m => (JsonNode)m)]),
            },
        };
    }
}
