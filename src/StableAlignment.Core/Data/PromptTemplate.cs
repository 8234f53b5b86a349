using StableAlignment.Core.Models;

namespace StableAlignment.Core.Data;

/// <summary>
/// Renders an instruction and an optional input into the prompt a response follows. The default is the
/// Alpaca-style template of spec §3; real instruct checkpoints use their own family (<see cref="ForFamily"/>,
/// <see cref="FromChatTemplate"/>); any other format is <c>new PromptTemplate { WithInput = ..., WithoutInput = ... }</c>.
/// </summary>
/// <remarks>
/// Placeholders are <c>{instruction}</c> and <c>{input}</c>. The template ends where the response starts; tokens of
/// prompt and response are produced separately and joined, so no separator is needed between them. A chat family
/// renders one user turn (the instruction, then a blank line and the input when there is one) with the assistant
/// header, exactly as llama.cpp's <c>llama_chat_apply_template</c> renders it.
/// </remarks>
public sealed record PromptTemplate
{
    private const string InstructionSlot = "{instruction}";
    private const string InputSlot = "{input}";

    /// <summary>The Alpaca-style template of spec §3.</summary>
    public static PromptTemplate Alpaca { get; } = new();

    /// <summary>ChatML, as Qwen2 and SmolLM instruct checkpoints expect.</summary>
    public static PromptTemplate ChatMl { get; } = ForFamily(ChatTemplateFamily.ChatMl);

    /// <summary>Llama 3's header format.</summary>
    public static PromptTemplate Llama3 { get; } = ForFamily(ChatTemplateFamily.Llama3);

    /// <summary>Llama 2's <c>[INST]</c> format as Meta's template renders it (<see cref="ChatTemplateFamily.Llama2SystemStrip"/>).</summary>
    public static PromptTemplate Llama2 { get; } = ForFamily(ChatTemplateFamily.Llama2SystemStrip);

    /// <summary>Mistral Instruct's <c>[INST]</c> format (v3, <see cref="ChatTemplateFamily.MistralV3"/>).</summary>
    public static PromptTemplate Mistral { get; } = ForFamily(ChatTemplateFamily.MistralV3);

    /// <summary>
    /// The chat family this template renders, or null for a custom <see cref="WithInput"/>/<see cref="WithoutInput"/>
    /// pair. Default <see cref="ChatTemplateFamily.Alpaca"/>.
    /// </summary>
    public ChatTemplateFamily? Family { get; init; } = ChatTemplateFamily.Alpaca;

    private readonly string? _chatTemplate;

    /// <summary>
    /// The Jinja <c>chat_template</c> exports write back (<c>tokenizer_config.json</c>, GGUF <c>tokenizer.chat_template</c>):
    /// the checkpoint's own text for <see cref="FromChatTemplate"/>, the family's canonical one otherwise, and null for
    /// custom <see cref="WithInput"/>/<see cref="WithoutInput"/> texts unless set.
    /// </summary>
    public string? ChatTemplate
    {
        get => _chatTemplate ?? (Family is { } f && (f != ChatTemplateFamily.Alpaca || this == Alpaca) ? ChatTemplates.Jinja(f) : null);
        init => _chatTemplate = value;
    }

    /// <summary>The template of a chat family (its placeholders kept for <see cref="TryParse"/>).</summary>
    /// <param name="family">The family.</param>
    public static PromptTemplate ForFamily(ChatTemplateFamily family)
    {
        if (family == ChatTemplateFamily.Alpaca) return new PromptTemplate();
        return new PromptTemplate
        {
            Family = family,
            WithInput = ChatTemplates.Render(family, [("user", InstructionSlot + "\n\n" + InputSlot)]),
            WithoutInput = ChatTemplates.Render(family, [("user", InstructionSlot)]),
        };
    }

    /// <summary>
    /// The template of a checkpoint's Jinja <c>chat_template</c>, recognised as llama.cpp recognises it; the text is
    /// kept for export.
    /// </summary>
    /// <param name="chatTemplate">The Jinja text (or a family name such as <c>chatml</c>).</param>
    /// <exception cref="ArgumentException">An unknown template; the message quotes it and says how to pick a family by hand.</exception>
    public static PromptTemplate FromChatTemplate(string chatTemplate) =>
        ForFamily(ChatTemplates.Detect(chatTemplate)) with { ChatTemplate = chatTemplate };

    /// <summary>The template named by a checkpoint's <c>tokenizer_config.json</c> <c>chat_template</c> (a string, or the entry named "default").</summary>
    /// <param name="tokenizerConfigPath">Path of <c>tokenizer_config.json</c>.</param>
    /// <exception cref="InvalidDataException">The file has no chat template.</exception>
    /// <exception cref="ArgumentException">The template is not a supported family.</exception>
    public static PromptTemplate FromTokenizerConfig(string tokenizerConfigPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tokenizerConfigPath);
        var template = ChatTemplates.ReadFromTokenizerConfig(tokenizerConfigPath)
            ?? throw new InvalidDataException($"'{tokenizerConfigPath}' has no chat_template; choose a family with PromptTemplate.ForFamily.");
        return FromChatTemplate(template);
    }

    /// <summary>The template used when the input is non-empty.</summary>
    public string WithInput { get; init; } = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:";

    /// <summary>The template used when the input is empty (the Input block is dropped).</summary>
    public string WithoutInput { get; init; } = "### Instruction:\n{instruction}\n\n### Response:";

    /// <summary>Renders a prompt.</summary>
    /// <param name="instruction">The instruction text.</param>
    /// <param name="input">The input text; empty or <see langword="null"/> selects <see cref="WithoutInput"/>.</param>
    /// <returns>The rendered prompt.</returns>
    public string Render(string instruction, string? input)
    {
        ArgumentNullException.ThrowIfNull(instruction);
        if (Family is { } family && family != ChatTemplateFamily.Alpaca)
            return ChatTemplates.Render(family, [("user", string.IsNullOrEmpty(input) ? instruction : instruction + "\n\n" + input)]);
        return string.IsNullOrEmpty(input)
            ? WithoutInput.Replace(InstructionSlot, instruction, StringComparison.Ordinal)
            : WithInput.Replace(InstructionSlot, instruction, StringComparison.Ordinal)
                .Replace(InputSlot, input, StringComparison.Ordinal);
    }

    /// <summary>
    /// Recovers instruction and input from a prompt this template rendered, when the prompt has the template's shape.
    /// </summary>
    /// <param name="prompt">A rendered prompt.</param>
    /// <param name="instruction">The instruction, when recognised.</param>
    /// <param name="input">The input (empty when the template without input matched).</param>
    /// <returns>Whether the prompt matched one of the two templates.</returns>
    public bool TryParse(string prompt, out string instruction, out string input)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        instruction = "";
        input = "";
        if (TryMatch(WithInput, prompt, out var parts) && parts.TryGetValue(InputSlot, out var inp) && inp.Length > 0
            && parts.TryGetValue(InstructionSlot, out var ins))
        {
            instruction = ins;
            input = inp;
            return true;
        }
        if (TryMatch(WithoutInput, prompt, out parts) && parts.TryGetValue(InstructionSlot, out ins))
        {
            instruction = ins;
            return true;
        }
        return false;
    }

    // Matches literal segments around the placeholders in order; a placeholder takes the shortest text up to the next
    // literal, except the last one, which takes everything up to the template's closing literal.
    private static bool TryMatch(string template, string text, out Dictionary<string, string> parts)
    {
        parts = new Dictionary<string, string>(StringComparer.Ordinal);
        var pieces = new List<(bool IsSlot, string Text)>();
        int i = 0;
        while (i < template.Length)
        {
            int a = template.IndexOf(InstructionSlot, i, StringComparison.Ordinal);
            int b = template.IndexOf(InputSlot, i, StringComparison.Ordinal);
            int next = a < 0 ? b : b < 0 ? a : Math.Min(a, b);
            if (next < 0)
            {
                pieces.Add((false, template[i..]));
                break;
            }
            if (next > i)
                pieces.Add((false, template[i..next]));
            string slot = next == a ? InstructionSlot : InputSlot;
            pieces.Add((true, slot));
            i = next + slot.Length;
        }

        int pos = 0;
        for (int p = 0; p < pieces.Count; p++)
        {
            var (isSlot, piece) = pieces[p];
            if (!isSlot)
            {
                if (!text.AsSpan(pos).StartsWith(piece, StringComparison.Ordinal))
                    return false;
                pos += piece.Length;
                continue;
            }
            bool lastSlot = !pieces.Skip(p + 1).Any(x => x.IsSlot);
            int end;
            if (lastSlot)
            {
                string tail = p + 1 < pieces.Count ? pieces[p + 1].Text : "";
                if (!text.EndsWith(tail, StringComparison.Ordinal) || text.Length - tail.Length < pos)
                    return false;
                end = text.Length - tail.Length;
            }
            else
            {
                if (pieces[p + 1].IsSlot)
                    return false; // two adjacent placeholders cannot be told apart
                end = text.IndexOf(pieces[p + 1].Text, pos, StringComparison.Ordinal);
                if (end < 0)
                    return false;
            }
            parts[piece] = text[pos..end];
            pos = end;
        }
        return pos == text.Length;
    }
}
