using System.Globalization;

namespace StableAlignment.Core.Evaluation;

/// <summary>Loads Moral Stories (Emelin et al., 2021) JSON Lines with lm-evaluation-harness's context rule.</summary>
/// <remarks>
/// Each line needs <c>norm</c>, <c>situation</c>, <c>intention</c>, <c>moral_action</c> and <c>immoral_action</c>.
/// Context: norm, situation and intention, each capitalised the Python way (first letter upper, the rest lower),
/// joined by single spaces. Choices: [moral_action, immoral_action]; gold is the moral action. The item id is the
/// line's <c>ID</c> field when present, else its line number.
/// </remarks>
public static class MoralStoriesTasks
{
    /// <summary>Loads a Moral Stories JSON Lines file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The task <c>moral_stories</c>.</returns>
    /// <exception cref="TaskFormatException">A line is malformed; the message names it.</exception>
    public static MultipleChoiceTask Load(string path)
    {
        using var reader = TaskFiles.OpenText(path);
        return Read(reader, path);
    }

    internal static MultipleChoiceTask Read(TextReader reader, string source)
    {
        var items = new List<MultipleChoiceItem>();
        foreach (var (line, obj) in TaskFiles.ReadJsonLines(reader, source))
        {
            string norm = TaskFiles.GetString(obj, "norm", source, line);
            string situation = TaskFiles.GetString(obj, "situation", source, line);
            string intention = TaskFiles.GetString(obj, "intention", source, line);
            string moral = TaskFiles.GetString(obj, "moral_action", source, line);
            string immoral = TaskFiles.GetString(obj, "immoral_action", source, line);
            string context = string.Join(' ', TaskFiles.Capitalize(norm), TaskFiles.Capitalize(situation), TaskFiles.Capitalize(intention));
            string id = TaskFiles.GetOptionalText(obj, "ID") ?? "line-" + line.ToString(CultureInfo.InvariantCulture);
            items.Add(MultipleChoiceItem.WithGold(id, context, [moral, immoral], 0));
        }
        return TaskChecks.Finish(new MultipleChoiceTask("moral_stories", items), source);
    }
}
