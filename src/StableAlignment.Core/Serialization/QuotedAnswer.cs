namespace StableAlignment.Core.Serialization;

/// <summary>
/// How a prompt quotes an answer that a model is asked to rate (the sandbox's peers and observers, the judge): between
/// <see cref="Open"/> and <see cref="Close"/> on lines of their own, the prompt saying that the quoted text is data. The
/// tags are neutralised inside the answer, so an answer cannot close its own quote and speak as the prompt.
/// </summary>
internal static class QuotedAnswer
{
    public const string Open = "<answer>";
    public const string Close = "</answer>";

    /// <summary><paramref name="answer"/> with every <c>&lt;answer&gt;</c> and <c>&lt;/answer&gt;</c> (any case) written as <c>[answer]</c> / <c>[/answer]</c>.</summary>
    public static string Neutralise(string answer) =>
        answer.Replace(Close, "[/answer]", StringComparison.OrdinalIgnoreCase).Replace(Open, "[answer]", StringComparison.OrdinalIgnoreCase);

    /// <summary>The answer quoted: the opening tag, the neutralised answer, the closing tag, each on its own line.</summary>
    public static string Quote(string answer) => $"{Open}\n{Neutralise(answer)}\n{Close}";
}
