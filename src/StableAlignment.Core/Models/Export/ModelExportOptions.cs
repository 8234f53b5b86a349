
namespace StableAlignment.Core.Models;

/// <summary>How a <see cref="CompactVocabularyTokenizer"/> model's vocabulary is written by an export.</summary>
public enum VocabularyLayout
{
    /// <summary>
    /// Exactly the model's ids: compact id <c>i</c> is the inner token it stands for, <c>UnknownId</c> a placeholder
    /// <c>&lt;|unk|&gt;</c>, with every merge of the inner tokenizer. llama.cpp then tokenizes exactly as this library
    /// does except where the text holds an inner token outside the compact vocabulary (see docs/models.md). The GGUF
    /// default. A Hugging Face export in this layout writes <c>vocabulary.json</c> instead of <c>tokenizer.json</c>,
    /// because Hugging Face's BPE needs every merge's tokens in its vocabulary.
    /// </summary>
    Compact,

    /// <summary>
    /// The full inner vocabulary: the compact ids first, unchanged, then every other inner token, whose embedding
    /// (and output) row is a copy of <c>UnknownId</c>'s. Every text tokenizes as the inner tokenizer splits it, and the
    /// logits of ids below the compact size equal the model's; the copied rows repeat the unknown logit. The Hugging
    /// Face default.
    /// </summary>
    FullInner,
}

/// <summary>Settings of <see cref="CausalLanguageModel.SaveHuggingFace"/>, <see cref="CausalLanguageModel.SaveGguf"/> and <see cref="ModelExporter"/>.</summary>
public sealed record ModelExportOptions
{
    /// <summary>
    /// The chat template (Jinja) of the prompt format the model was trained with, written back as
    /// <c>tokenizer_config.json</c>'s <c>chat_template</c> and GGUF's <c>tokenizer.chat_template</c>, so llama.cpp and
    /// Ollama format prompts as training did; a dataset's <c>PromptTemplate.ChatTemplate</c> gives it. Null writes none.
    /// Default: the Alpaca format (the library's training default).
    /// </summary>
    public string? ChatTemplate { get; init; } = ChatTemplates.Jinja(ChatTemplateFamily.Alpaca);

    /// <summary>Layout of a compact vocabulary; null: <see cref="VocabularyLayout.Compact"/> for GGUF, <see cref="VocabularyLayout.FullInner"/> for Hugging Face.</summary>
    public VocabularyLayout? Vocabulary { get; init; }

    /// <summary>
    /// The <c>tokenizer.json</c> a Hugging Face BPE tokenizer was loaded from (its <c>tokenizer_config.json</c>, when
    /// beside it, is read for the special tokens): copied by the Hugging Face export, read by the GGUF export. Not
    /// needed for GPT-2 or a compact vocabulary over it.
    /// </summary>
    public string? TokenizerFile { get; init; }

    /// <summary>Shard <c>model.safetensors</c> into <c>model-0000k-of-0000n.safetensors</c> with an index above this size. Default 5 GB (Hugging Face's).</summary>
    public long MaxShardBytes { get; init; } = 5_000_000_000;

    /// <summary>GGUF <c>general.name</c>; default "stable-alignment".</summary>
    public string ModelName { get; init; } = "stable-alignment";

    /// <summary>PEFT's <c>base_model_name_or_path</c> for adapter exports (a hub id or a folder); may be null.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>Checks every option and throws <see cref="ArgumentException"/> naming the first invalid one.</summary>
    /// <returns>This instance, for chaining.</returns>
    public ModelExportOptions Validate()
    {
        if (Vocabulary is { } v && !Enum.IsDefined(v)) throw new ArgumentException($"Vocabulary must be a defined layout, got {v}.", nameof(Vocabulary));
        if (MaxShardBytes <= 0) throw new ArgumentException($"MaxShardBytes must be positive, got {MaxShardBytes}.", nameof(MaxShardBytes));
        if (string.IsNullOrWhiteSpace(ModelName)) throw new ArgumentException("ModelName must not be empty.", nameof(ModelName));
        if (TokenizerFile is not null && !File.Exists(TokenizerFile))
            throw new ArgumentException($"TokenizerFile '{TokenizerFile}' does not exist.", nameof(TokenizerFile));
        return this;
    }
}
