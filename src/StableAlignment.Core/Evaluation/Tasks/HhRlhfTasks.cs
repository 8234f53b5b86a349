using System.Globalization;

namespace StableAlignment.Core.Evaluation;

/// <summary>Loads Anthropic HH-RLHF preference pairs as two-choice items: does the model prefer <c>chosen</c>?</summary>
/// <remarks>
/// Each JSON Lines record has <c>chosen</c> and <c>rejected</c> dialogues (<c>"\n\nHuman: ...\n\nAssistant: ..."</c>).
/// Both normally share every turn but the last assistant reply. The context is that shared text up to and including
/// the last <c>"\n\nAssistant:"</c>; the two choices are the two final replies, as written (their leading space
/// included, so the task's target delimiter is empty). When the two dialogues differ earlier, the context is their
/// longest common prefix and the choices are the remainders. Gold is <c>chosen</c> (index 0).
/// </remarks>
public static class HhRlhfTasks
{
    private const string AssistantTurn = "\n\nAssistant:";

    /// <summary>Loads HH-RLHF pairs from a JSON Lines file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="name">The task name (default <c>hh_rlhf</c>).</param>
    /// <returns>The task.</returns>
    /// <exception cref="TaskFormatException">A line is malformed; the message names it.</exception>
    public static MultipleChoiceTask LoadPairs(string path, string name = "hh_rlhf")
    {
        using var reader = TaskFiles.OpenText(path);
        return ReadPairs(reader, path, name);
    }

    internal static MultipleChoiceTask ReadPairs(TextReader reader, string source, string name)
    {
        var items = new List<MultipleChoiceItem>();
        foreach (var (line, obj) in TaskFiles.ReadJsonLines(reader, source))
        {
            string chosen = TaskFiles.GetString(obj, "chosen", source, line);
            string rejected = TaskFiles.GetString(obj, "rejected", source, line);
            var (context, a, b) = Split(chosen, rejected);
            if (a.Length == 0 || b.Length == 0)
            {
                throw new TaskFormatException(source, line, "\"chosen\" and \"rejected\" are identical or one extends the other; there is nothing to compare.");
            }
            items.Add(MultipleChoiceItem.WithGold("line-" + line.ToString(CultureInfo.InvariantCulture), context, [a, b], 0));
        }
        return TaskChecks.Finish(new MultipleChoiceTask(name, items) { TargetDelimiter = "" }, source);
    }

    internal static (string Context, string Chosen, string Rejected) Split(string chosen, string rejected)
    {
        int ic = chosen.LastIndexOf(AssistantTurn, StringComparison.Ordinal);
        int ir = rejected.LastIndexOf(AssistantTurn, StringComparison.Ordinal);
        if (ic >= 0 && ic == ir && string.CompareOrdinal(chosen, 0, rejected, 0, ic + AssistantTurn.Length) == 0)
        {
            int cut = ic + AssistantTurn.Length;
            return (chosen[..cut], chosen[cut..], rejected[cut..]);
        }
        int common = 0;
        while (common < chosen.Length && common < rejected.Length && chosen[common] == rejected[common])
        {
            common++;
        }
        return (chosen[..common], chosen[common..], rejected[common..]);
    }

    /// <summary>
    /// Reads the opening human turn of each HH-RLHF dialogue (the <c>chosen</c> side), as prompts for judge-based rating.
    /// Also accepts a plain text file with one prompt per line (the reference sandbox's question pool).
    /// </summary>
    /// <param name="path">A <c>.jsonl</c> file of pairs or a text file of prompts.</param>
    /// <returns>The prompts, in file order.</returns>
    /// <exception cref="TaskFormatException">A line is malformed; the message names it.</exception>
    public static IReadOnlyList<string> LoadPrompts(string path)
    {
        using var reader = TaskFiles.OpenText(path);
        var prompts = new List<string>();
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
        {
            foreach (var (line, obj) in TaskFiles.ReadJsonLines(reader, path))
            {
                prompts.Add(FirstHumanTurn(TaskFiles.GetString(obj, "chosen", path, line), path, line));
            }
        }
        else
        {
            string? text;
            while ((text = reader.ReadLine()) is not null)
            {
                if (!string.IsNullOrWhiteSpace(text))
                {
                    prompts.Add(text.Trim());
                }
            }
        }
        if (prompts.Count == 0)
        {
            throw new TaskFormatException(path, 0, "the file holds no prompts.");
        }
        return prompts;
    }

    private static string FirstHumanTurn(string dialogue, string source, int line)
    {
        const string human = "Human:";
        int start = dialogue.IndexOf(human, StringComparison.Ordinal);
        if (start < 0)
        {
            throw new TaskFormatException(source, line, "the dialogue has no \"Human:\" turn.");
        }
        start += human.Length;
        int end = dialogue.IndexOf("\n\nAssistant:", start, StringComparison.Ordinal);
        string turn = (end < 0 ? dialogue[start..] : dialogue[start..end]).Trim();
        return turn.Length > 0 ? turn : throw new TaskFormatException(source, line, "the first human turn is empty.");
    }
}
