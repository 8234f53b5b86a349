namespace StableAlignment.Core.Models;

/// <summary>
/// The prompt formats of real instruct checkpoints, named and rendered as llama.cpp's <c>llama_chat_apply_template</c>
/// renders them (its template names in brackets), plus the paper's Alpaca format.
/// </summary>
public enum ChatTemplateFamily
{
    /// <summary>The Alpaca-style <c>### Instruction:</c> / <c>### Response:</c> format of the paper (spec §3); llama.cpp has no equivalent.</summary>
    Alpaca,

    /// <summary>ChatML (<c>chatml</c>): Qwen2, SmolLM. <c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n</c>.</summary>
    ChatMl,

    /// <summary>Llama 3 (<c>llama3</c>): <c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\ncontent&lt;|eot_id|&gt;</c>, content trimmed.</summary>
    Llama3,

    /// <summary>Llama 2 without system support (<c>llama2</c>): <c>[INST] user [/INST]assistant&lt;/s&gt;</c>; also older Mistral Instruct templates.</summary>
    Llama2,

    /// <summary>Llama 2 with a <c>&lt;&lt;SYS&gt;&gt;</c> system block (<c>llama2-sys</c>).</summary>
    Llama2System,

    /// <summary>Llama 2 with a system block and <c>&lt;s&gt;</c> before each later turn (<c>llama2-sys-bos</c>).</summary>
    Llama2SystemBos,

    /// <summary>Llama 2 with a system block and stripped contents (<c>llama2-sys-strip</c>): Meta's official Llama 2 chat template.</summary>
    Llama2SystemStrip,

    /// <summary>Mistral's v1 format (<c>mistral-v1</c>): <c> [INST] user [/INST] assistant&lt;/s&gt;</c>.</summary>
    MistralV1,

    /// <summary>Mistral's v3 format (<c>mistral-v3</c>): <c>[INST] user[/INST] assistant&lt;/s&gt;</c>, assistant text trimmed.</summary>
    MistralV3,

    /// <summary>Mistral's v3 Tekken format (<c>mistral-v3-tekken</c>): <c>[INST]user[/INST]assistant&lt;/s&gt;</c>.</summary>
    MistralV3Tekken,

    /// <summary>Mistral's v7 format (<c>mistral-v7</c>): <c>[SYSTEM_PROMPT] system[/SYSTEM_PROMPT][INST] user[/INST] assistant&lt;/s&gt;</c>.</summary>
    MistralV7,
}
