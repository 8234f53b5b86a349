using Microsoft.ML.Tokenizers;

namespace StableAlignment.Core.Models;

/// <summary>
/// One entry point for every export: a model (plain or LoRA) and its tokenizer, or a checkpoint folder, to a Hugging
/// Face folder, a GGUF file or a PEFT adapter folder.
/// </summary>
public static class ModelExporter
{
    /// <summary>The dtype an export uses when none is given: f32 for Hugging Face and PEFT, f16 for GGUF (llama.cpp's converter default).</summary>
    public static ExportDType DefaultDType(ExportFormat format) => format == ExportFormat.Gguf ? ExportDType.F16 : ExportDType.F32;

    /// <summary>Checks that <paramref name="dtype"/> can be written in <paramref name="format"/>.</summary>
    /// <exception cref="ArgumentException">They do not go together; the message names both and what the format takes.</exception>
    public static void Validate(ExportFormat format, ExportDType dtype)
    {
        bool ok = format switch
        {
            ExportFormat.Gguf => dtype is ExportDType.F32 or ExportDType.F16 or ExportDType.Q8_0,
            ExportFormat.HuggingFace or ExportFormat.Peft => dtype is ExportDType.F32 or ExportDType.F16 or ExportDType.BF16,
            _ => throw new ArgumentException($"Unknown export format {format}.", nameof(format)),
        };
        if (!ok)
        {
            var takes = format == ExportFormat.Gguf ? "f32, f16 or q8_0" : "f32, f16 or bf16";
            throw new ArgumentException($"--dtype {ExportNames.Name(dtype)} cannot be written as {format}; it takes {takes}.", nameof(dtype));
        }
    }

    /// <summary>Exports <paramref name="model"/> with <paramref name="tokenizer"/>.</summary>
    /// <param name="model">The model; a LoRA model exports merged (Hugging Face, GGUF) or as its adapter (PEFT).</param>
    /// <param name="tokenizer">Its tokenizer (required for GGUF; optional for Hugging Face; unused for PEFT).</param>
    /// <param name="format">What to write.</param>
    /// <param name="dtype">The number format (see <see cref="Validate"/>).</param>
    /// <param name="target">The folder (Hugging Face, PEFT) or file (GGUF) to write.</param>
    /// <param name="options">Export settings; null for the defaults.</param>
    /// <param name="progress">Told after each tensor of a Hugging Face or GGUF export is written.</param>
    /// <param name="cancellationToken">Checked before each tensor.</param>
    /// <exception cref="ArgumentException">A bad combination: the message says which and what to do instead.</exception>
    public static void Export(CausalLanguageModel model, Tokenizer? tokenizer, ExportFormat format, ExportDType dtype, string target, ModelExportOptions? options = null,
        IProgress<ExportProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(target);
        Validate(format, dtype);
        options ??= new ModelExportOptions();
        switch (format)
        {
            case ExportFormat.HuggingFace:
                model.SaveHuggingFace(target, dtype, tokenizer, options, progress, cancellationToken);
                break;
            case ExportFormat.Gguf:
                if (tokenizer is null) throw new ArgumentException("A GGUF export needs the model's tokenizer.", nameof(tokenizer));
                var directory = Path.GetDirectoryName(Path.GetFullPath(target));
                if (directory is not null) Directory.CreateDirectory(directory);
                model.SaveGguf(target, dtype, tokenizer, options, progress, cancellationToken);
                break;
            case ExportFormat.Peft:
                if (model.Lora is null) throw new ArgumentException("The model has no LoRA adapter to export as peft; export it as hf or gguf, or train it with LoRA.", nameof(model));
                model.SaveLoraAdapter(target, dtype, options.BaseModelNameOrPath);
                break;
        }
    }

    /// <summary>
    /// Exports a checkpoint folder (<see cref="ModelCheckpoint"/>: the model with its tokenizer beside it,
    /// <c>tokenizer.json</c> for a Hugging Face BPE tokenizer or <c>vocabulary.json</c> for a compact vocabulary
    /// over GPT-2), the layout a run's trained variants are kept in.
    /// </summary>
    /// <param name="checkpointDirectory">The folder.</param>
    /// <param name="format">What to write.</param>
    /// <param name="dtype">The number format.</param>
    /// <param name="target">The folder or file to write.</param>
    /// <param name="options">Export settings; <see cref="ModelExportOptions.TokenizerFile"/> is filled in from the folder.</param>
    /// <param name="progress">Told after each tensor of a Hugging Face or GGUF export is written.</param>
    /// <param name="cancellationToken">Checked before each tensor.</param>
    /// <exception cref="FileNotFoundException">The folder has no model or no tokenizer.</exception>
    public static void ExportCheckpoint(string checkpointDirectory, ExportFormat format, ExportDType dtype, string target, ModelExportOptions? options = null,
        IProgress<ExportProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(checkpointDirectory);
        Validate(format, dtype);
        options ??= new ModelExportOptions();
        using var checkpoint = ModelCheckpoint.Load(checkpointDirectory);
        var huggingFace = Path.Combine(checkpointDirectory, ModelCheckpoint.HuggingFaceTokenizerFileName);
        if (File.Exists(huggingFace)) options = options with { TokenizerFile = options.TokenizerFile ?? huggingFace };
        Export(checkpoint.Model, checkpoint.Tokenizer, format, dtype, target, options, progress, cancellationToken);
    }
}
