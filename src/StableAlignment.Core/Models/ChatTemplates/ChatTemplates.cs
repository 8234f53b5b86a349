using System.Text;
using System.Text.Json;

namespace StableAlignment.Core.Models;

/// <summary>
/// Renders conversations in the <see cref="ChatTemplateFamily"/> formats exactly as llama.cpp's
/// <c>llama_chat_apply_template</c> does, recognises a checkpoint's Jinja <c>chat_template</c> by the same rules as
/// llama.cpp's <c>llm_chat_detect_template</c>, and gives each family a Jinja template that Hugging Face renders the same
/// way and that llama.cpp recognises as the same family (so exports carry it back).
/// </summary>
public static class ChatTemplates
{
    private static readonly (ChatTemplateFamily Family, string Name)[] Names =
    [
        (ChatTemplateFamily.Alpaca, "alpaca"), (ChatTemplateFamily.ChatMl, "chatml"), (ChatTemplateFamily.Llama3, "llama3"),
        (ChatTemplateFamily.Llama2, "llama2"), (ChatTemplateFamily.Llama2System, "llama2-sys"), (ChatTemplateFamily.Llama2SystemBos, "llama2-sys-bos"),
        (ChatTemplateFamily.Llama2SystemStrip, "llama2-sys-strip"), (ChatTemplateFamily.MistralV1, "mistral-v1"), (ChatTemplateFamily.MistralV3, "mistral-v3"),
        (ChatTemplateFamily.MistralV3Tekken, "mistral-v3-tekken"), (ChatTemplateFamily.MistralV7, "mistral-v7"),
    ];

    /// <summary>llama.cpp's name of a family (<c>chatml</c>, <c>llama3</c>, <c>llama2-sys</c>, ...; <c>alpaca</c> is this library's).</summary>
    public static string Name(ChatTemplateFamily family) =>
        Names.FirstOrDefault(n => n.Family == family).Name ?? throw new ArgumentOutOfRangeException(nameof(family), family, "Not a chat template family.");

    /// <summary>
    /// Renders <paramref name="messages"/> (roles <c>system</c>, <c>user</c>, <c>assistant</c>) as llama.cpp renders them.
    /// BOS is not included; the tokenizer adds it where the model wants one.
    /// </summary>
    /// <param name="family">The format.</param>
    /// <param name="messages">The conversation, in order.</param>
    /// <param name="addAssistantPrompt">End with the header that starts an assistant turn (formats without one ignore it, as llama.cpp does).</param>
    /// <returns>The prompt text.</returns>
    public static string Render(ChatTemplateFamily family, IEnumerable<(string Role, string Content)> messages, bool addAssistantPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var chat = messages.ToList();
        var s = new StringBuilder();
        switch (family)
        {
            case ChatTemplateFamily.Alpaca:
                foreach (var (role, content) in chat)
                    s.Append(role switch
                    {
                        "system" => content + "\n\n",
                        "user" => "### Instruction:\n" + content + "\n\n",
                        _ => "### Response:" + content + "\n\n",
                    });
                if (addAssistantPrompt) s.Append("### Response:");
                break;
            case ChatTemplateFamily.ChatMl:
                foreach (var (role, content) in chat) s.Append("<|im_start|>").Append(role).Append('\n').Append(content).Append("<|im_end|>\n");
                if (addAssistantPrompt) s.Append("<|im_start|>assistant\n");
                break;
            case ChatTemplateFamily.Llama3:
                foreach (var (role, content) in chat)
                    s.Append("<|start_header_id|>").Append(role).Append("<|end_header_id|>\n\n").Append(TrimSpace(content)).Append("<|eot_id|>");
                if (addAssistantPrompt) s.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
                break;
            case ChatTemplateFamily.Llama2 or ChatTemplateFamily.Llama2System or ChatTemplateFamily.Llama2SystemBos or ChatTemplateFamily.Llama2SystemStrip:
                RenderLlama2(s, family, chat);
                break;
            case ChatTemplateFamily.MistralV1 or ChatTemplateFamily.MistralV3 or ChatTemplateFamily.MistralV3Tekken:
                RenderMistral(s, family, chat);
                break;
            case ChatTemplateFamily.MistralV7:
                foreach (var (role, content) in chat)
                    s.Append(role switch
                    {
                        "system" => "[SYSTEM_PROMPT] " + content + "[/SYSTEM_PROMPT]",
                        "user" => "[INST] " + content + "[/INST]",
                        _ => " " + content + "</s>",
                    });
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(family), family, "Not a chat template family.");
        }
        return s.ToString();
    }

    private static void RenderLlama2(StringBuilder s, ChatTemplateFamily family, List<(string Role, string Content)> chat)
    {
        bool system = family != ChatTemplateFamily.Llama2, bosInHistory = family == ChatTemplateFamily.Llama2SystemBos;
        bool strip = family == ChatTemplateFamily.Llama2SystemStrip, insideTurn = true;
        s.Append("[INST] ");
        foreach (var (role, raw) in chat)
        {
            var content = strip ? TrimSpace(raw) : raw;
            if (!insideTurn)
            {
                insideTurn = true;
                s.Append(bosInHistory ? "<s>[INST] " : "[INST] ");
            }
            if (role == "system") s.Append(system ? "<<SYS>>\n" + content + "\n<</SYS>>\n\n" : content + "\n");
            else if (role == "user") s.Append(content).Append(" [/INST]");
            else
            {
                s.Append(content).Append("</s>");
                insideTurn = false;
            }
        }
    }

    private static void RenderMistral(StringBuilder s, ChatTemplateFamily family, List<(string Role, string Content)> chat)
    {
        string leading = family == ChatTemplateFamily.MistralV1 ? " " : "", trailing = family == ChatTemplateFamily.MistralV3Tekken ? "" : " ";
        bool trimAssistant = family == ChatTemplateFamily.MistralV3, insideTurn = false;
        foreach (var (role, content) in chat)
        {
            if (!insideTurn)
            {
                s.Append(leading).Append("[INST]").Append(trailing);
                insideTurn = true;
            }
            if (role == "system") s.Append(content).Append("\n\n");
            else if (role == "user") s.Append(content).Append(leading).Append("[/INST]");
            else
            {
                s.Append(trailing).Append(trimAssistant ? TrimSpace(content) : content).Append("</s>");
                insideTurn = false;
            }
        }
    }

    // C's isspace set, which llama.cpp's trim uses (not .NET's wider Unicode whitespace).
    private static string TrimSpace(string text) => text.Trim(' ', '\t', '\n', '\v', '\f', '\r');

    /// <summary>The <c>chat_template</c> of a <c>tokenizer_config.json</c>: the string, or the entry named "default" of a list; null when absent.</summary>
    internal static string? ReadFromTokenizerConfig(string tokenizerConfigPath)
    {
        if (!File.Exists(tokenizerConfigPath)) throw new FileNotFoundException($"'{tokenizerConfigPath}' does not exist.", tokenizerConfigPath);
        using var doc = JsonDocument.Parse(File.ReadAllText(tokenizerConfigPath));
        if (!doc.RootElement.TryGetProperty("chat_template", out var t)) return null;
        return t.ValueKind switch
        {
            JsonValueKind.String => t.GetString(),
            JsonValueKind.Array => t.EnumerateArray().Where(e => e.TryGetProperty("name", out var n) && n.GetString() == "default")
                .Select(e => e.GetProperty("template").GetString()).FirstOrDefault(),
            _ => null,
        };
    }

    /// <summary>
    /// Recognises a Jinja <c>chat_template</c> (or a family name such as <c>chatml</c>) by llama.cpp's rules.
    /// </summary>
    /// <param name="template">The template text from <c>tokenizer_config.json</c> or GGUF <c>tokenizer.chat_template</c>.</param>
    /// <returns>The family.</returns>
    /// <exception cref="ArgumentException">The template is not one of the supported families; the message quotes it,
    /// says which llama.cpp family it is when llama.cpp knows it, and how to choose a family by hand.</exception>
    public static ChatTemplateFamily Detect(string template)
    {
        ArgumentNullException.ThrowIfNull(template);
        var (family, llamaCppName) = DetectCore(template);
        if (family is { } f) return f;
        var excerpt = template.Length <= 80 ? template : template[..80] + "...";
        excerpt = excerpt.Replace("\n", "\\n", StringComparison.Ordinal);
        var known = llamaCppName is null ? "is not a format llama.cpp or this library recognises" : $"is llama.cpp's '{llamaCppName}' format, which this library does not render";
        throw new ArgumentException(
            $"The chat template \"{excerpt}\" {known}. Supported: {string.Join(", ", Names.Select(n => n.Name))}. "
            + "Choose a family by hand with PromptTemplate.ForFamily(ChatTemplateFamily.<Family>).", nameof(template));
    }

    /// <summary>The family and llama.cpp's name for it (null family: known to llama.cpp but not supported; both null: unknown).</summary>
    internal static (ChatTemplateFamily? Family, string? LlamaCppName) DetectCore(string t)
    {
        foreach (var (family, name) in Names)
            if (t == name) return (family, name);
        bool Has(string s) => t.Contains(s, StringComparison.Ordinal);

        // The order of llama.cpp's llm_chat_detect_template up to the last family supported here.
        if (Has("<|im_start|>"))
            return Has("<|im_sep|>") ? (null, "phi4") : Has("<end_of_utterance>") ? (null, "smolvlm") : (ChatTemplateFamily.ChatMl, "chatml");
        if (t.StartsWith("mistral", StringComparison.Ordinal) || Has("[INST]"))
        {
            if (Has("[SYSTEM_PROMPT]")) return (ChatTemplateFamily.MistralV7, "mistral-v7");
            if (Has("' [INST] ' + system_message") || Has("[AVAILABLE_TOOLS]"))
            {
                if (Has(" [INST]")) return (ChatTemplateFamily.MistralV1, "mistral-v1");
                if (Has("\"[INST]\"")) return (ChatTemplateFamily.MistralV3Tekken, "mistral-v3-tekken");
                return (ChatTemplateFamily.MistralV3, "mistral-v3");
            }
            if (Has("content.strip()")) return (ChatTemplateFamily.Llama2SystemStrip, "llama2-sys-strip");
            if (Has("bos_token + '[INST]")) return (ChatTemplateFamily.Llama2SystemBos, "llama2-sys-bos");
            return Has("<<SYS>>") ? (ChatTemplateFamily.Llama2System, "llama2-sys") : (ChatTemplateFamily.Llama2, "llama2");
        }
        (Func<bool> Test, string Name)[] earlier =
        [
            (() => Has("<|assistant|>") && Has("<|end|>"), "phi3"),
            (() => Has("[gMASK]<sop>"), "chatglm4"),
            (() => Has("<|assistant|>") && Has("<|user|>"), Has("</s>") ? "falcon3" : "glmedge"),
            (() => Has("<|{{ item['role'] }}|>") && Has("<|begin_of_image|>"), "glmedge"),
            (() => Has("<|user|>") && Has("<|endoftext|>"), "zephyr"),
            (() => Has("bos_token + message['role']"), "monarch"),
            (() => Has("<start_of_turn>"), "gemma"),
            (() => Has("'\\n\\nAssistant: ' + eos_token"), "orion"),
            (() => Has("GPT4 Correct "), "openchat"),
            (() => Has("USER: ") && Has("ASSISTANT: "), Has("SYSTEM: ") ? "vicuna-orca" : "vicuna"),
            (() => Has("### Instruction:") && Has("<|EOT|>"), "deepseek"),
            (() => Has("<|START_OF_TURN_TOKEN|>") && Has("<|USER_TOKEN|>"), "command-r"),
        ];
        foreach (var (test, name) in earlier)
            if (test()) return (null, name);
        if (Has("<|start_header_id|>") && Has("<|end_header_id|>")) return (ChatTemplateFamily.Llama3, "llama3");
        if (Has("### Instruction:") && Has("### Response:")) return (ChatTemplateFamily.Alpaca, null);
        return (null, null);
    }

    /// <summary>
    /// A Jinja <c>chat_template</c> for <paramref name="family"/> that renders as <see cref="Render"/> does and that
    /// llama.cpp recognises as the same family. Llama 2 with BOS in the history writes <c>bos_token</c>, which is
    /// <c>&lt;s&gt;</c> in Llama 2's vocabulary (llama.cpp writes <c>&lt;s&gt;</c> literally).
    /// </summary>
    public static string Jinja(ChatTemplateFamily family) => family switch
    {
        ChatTemplateFamily.Alpaca =>
            "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
            + "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
            + "{% else %}{{ '### Response:' + message['content'] + '\\n\\n' }}{% endif %}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '### Response:' }}{% endif %}",
        ChatTemplateFamily.ChatMl =>
            "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        ChatTemplateFamily.Llama3 =>
            "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
        ChatTemplateFamily.Llama2 => Llama2Jinja("content + '\\n'", "'[INST] '", "content"),
        ChatTemplateFamily.Llama2System => Llama2Jinja(SysBlock("content"), "'[INST] '", "content"),
        ChatTemplateFamily.Llama2SystemBos => Llama2Jinja(SysBlock("content"), "bos_token + '[INST] '", "content"),
        // llama.cpp recognises this variant by the literal "content.strip()".
        ChatTemplateFamily.Llama2SystemStrip => Llama2Jinja(SysBlock("content.strip()"), "'[INST] '", "content.strip()"),
        ChatTemplateFamily.MistralV1 =>
            "{% set ns = namespace(inside=false) %}{% set system_message = '' %}{% for message in messages %}"
            + "{% if not ns.inside %}{{ ' [INST] ' + system_message }}{% set ns.inside = true %}{% endif %}"
            + "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
            + "{% elif message['role'] == 'user' %}{{ message['content'] + ' [/INST]' }}"
            + "{% else %}{{ ' ' + message['content'] + '</s>' }}{% set ns.inside = false %}{% endif %}{% endfor %}",
        ChatTemplateFamily.MistralV3 => MistralJinja("'[INST] '", "' ' + message['content'] | trim"),
        ChatTemplateFamily.MistralV3Tekken => MistralJinja("\"[INST]\"", "message['content']"),
        ChatTemplateFamily.MistralV7 =>
            "{% for message in messages %}{% if message['role'] == 'system' %}{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}"
            + "{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + '[/INST]' }}"
            + "{% else %}{{ ' ' + message['content'] + '</s>' }}{% endif %}{% endfor %}",
        _ => throw new ArgumentOutOfRangeException(nameof(family), family, "Not a chat template family."),
    };

    private static string SysBlock(string content) => $"'<<SYS>>\\n' + {content} + '\\n<</SYS>>\\n\\n'";

    // llama.cpp opens with "[INST] " and opens a new turn after every assistant message.
    private static string Llama2Jinja(string system, string newTurn, string content) =>
        "{{ '[INST] ' }}{% for message in messages %}{% set content = message['content'] %}"
        + $"{{% if loop.index0 > 0 and messages[loop.index0 - 1]['role'] not in ['system', 'user'] %}}{{{{ {newTurn} }}}}{{% endif %}}"
        + $"{{% if message['role'] == 'system' %}}{{{{ {system} }}}}"
        + $"{{% elif message['role'] == 'user' %}}{{{{ {content} + ' [/INST]' }}}}"
        + $"{{% else %}}{{{{ {content} + '</s>' }}}}{{% endif %}}{{% endfor %}}";

    // Mistral v3: the [AVAILABLE_TOOLS] marker (in a comment; tools are not rendered) is how llama.cpp tells v3 from Llama 2.
    private static string MistralJinja(string open, string assistant) =>
        "{#- [AVAILABLE_TOOLS] are not rendered by this template -#}{% set ns = namespace(inside=false) %}{% for message in messages %}"
        + $"{{% if not ns.inside %}}{{{{ {open} }}}}{{% set ns.inside = true %}}{{% endif %}}"
        + "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
        + "{% elif message['role'] == 'user' %}{{ message['content'] + '[/INST]' }}"
        + $"{{% else %}}{{{{ {assistant} + '</s>' }}}}{{% set ns.inside = false %}}{{% endif %}}{{% endfor %}}";
}
