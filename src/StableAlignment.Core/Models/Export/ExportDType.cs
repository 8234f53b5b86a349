namespace StableAlignment.Core.Models;

/// <summary>The number format of exported weights.</summary>
public enum ExportDType
{
    /// <summary>32-bit float: Hugging Face, PEFT and GGUF.</summary>
    F32,

    /// <summary>16-bit IEEE half: Hugging Face, PEFT and GGUF (1-D tensors such as norms stay F32 in GGUF, as llama.cpp's converter keeps them).</summary>
    F16,

    /// <summary>bfloat16: Hugging Face and PEFT only (the GGUF export writes F32, F16 or Q8_0).</summary>
    BF16,

    /// <summary>GGUF only: blocks of 32 int8 values with one float16 scale (ggml's Q8_0); 1-D tensors stay F32.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1707:Identifiers should not contain underscores", Justification = "ggml's own name of the type.")]
    Q8_0,
}

/// <summary>What an export writes.</summary>
public enum ExportFormat
{
    /// <summary>A Hugging Face model folder: <c>config.json</c>, <c>model.safetensors</c> (sharded above a size), <c>generation_config.json</c>, tokenizer files.</summary>
    HuggingFace,

    /// <summary>One GGUF v3 file for llama.cpp and Ollama (llama architecture, gpt2 tokenizer).</summary>
    Gguf,

    /// <summary>A PEFT LoRA adapter folder: <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> (LoRA models only).</summary>
    Peft,
}

/// <summary>Parsing of the command-line spellings of <see cref="ExportFormat"/> and <see cref="ExportDType"/>.</summary>
public static class ExportNames
{
    /// <summary>The accepted spellings of formats: <c>hf</c>, <c>gguf</c>, <c>peft</c>.</summary>
    public const string Formats = "hf|gguf|peft";

    /// <summary>The accepted spellings of dtypes: <c>f32</c>, <c>f16</c>, <c>bf16</c>, <c>q8_0</c>.</summary>
    public const string DTypes = "f32|f16|bf16|q8_0";

    /// <summary>Parses <c>hf</c>, <c>gguf</c> or <c>peft</c> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">Any other text; the message names it and the accepted values.</exception>
    public static ExportFormat ParseFormat(string text) => text?.ToLowerInvariant() switch
    {
        "hf" or "huggingface" => ExportFormat.HuggingFace,
        "gguf" => ExportFormat.Gguf,
        "peft" => ExportFormat.Peft,
        _ => throw new ArgumentException($"Unknown export format '{text}'; use {Formats}.", nameof(text)),
    };

    /// <summary>Parses <c>f32</c>, <c>f16</c>, <c>bf16</c> or <c>q8_0</c> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">Any other text; the message names it and the accepted values.</exception>
    public static ExportDType ParseDType(string text) => text?.ToLowerInvariant() switch
    {
        "f32" or "float32" => ExportDType.F32,
        "f16" or "float16" => ExportDType.F16,
        "bf16" or "bfloat16" => ExportDType.BF16,
        "q8_0" => ExportDType.Q8_0,
        _ => throw new ArgumentException($"Unknown dtype '{text}'; use {DTypes}.", nameof(text)),
    };

    /// <summary>The command-line spelling of a dtype.</summary>
    public static string Name(ExportDType dtype) => dtype switch
    {
        ExportDType.F32 => "f32",
        ExportDType.F16 => "f16",
        ExportDType.BF16 => "bf16",
        ExportDType.Q8_0 => "q8_0",
        _ => dtype.ToString(),
    };
}
