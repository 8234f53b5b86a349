namespace StableAlignment.Core.Data;

/// <summary>
/// One training sample: a rendered prompt (instruction and optional input) with one rated output.
/// </summary>
/// <param name="Kind">Which of the three kinds the sample is.</param>
/// <param name="Instruction">The instruction block of the prompt.</param>
/// <param name="Input">The input block of the prompt; empty when there is none.</param>
/// <param name="Output">The response the model should learn.</param>
/// <param name="Rating">The response's rating on the dataset's scale (1-7 by default).</param>
public sealed record AlignmentSample(SampleKind Kind, string Instruction, string Input, string Output, double Rating)
{
    /// <summary>The model that produced <see cref="Output"/>; empty when unknown.</summary>
    public string Model { get; init; } = "";

    /// <summary>
    /// The prompt exactly as it must appear, when it is known verbatim (for example when read from the released
    /// format). When <see langword="null"/>, the prompt is rendered from <see cref="Instruction"/> and
    /// <see cref="Input"/> with a <see cref="PromptTemplate"/>.
    /// </summary>
    public string? Prompt { get; init; }

    /// <summary>The rendered prompt: <see cref="Prompt"/> when set, otherwise <paramref name="template"/> applied.</summary>
    /// <param name="template">The template to render with.</param>
    /// <returns>The prompt text the response follows.</returns>
    public string RenderPrompt(PromptTemplate template)
    {
        ArgumentNullException.ThrowIfNull(template);
        return Prompt ?? template.Render(Instruction, Input);
    }
}
