using System.Globalization;
using System.Text.Json;

namespace StableAlignment.Core.Evaluation;

/// <summary>Loads users' own multiple-choice tasks from JSON Lines.</summary>
/// <remarks>
/// One object per line:
/// <code>{"id": "q1", "context": "Question: ...\nAnswer:", "choices": ["yes", "no"], "gold": 0, "category": "optional"}</code>
/// <c>context</c> and <c>choices</c> (at least two non-empty strings) are required. Give either <c>gold</c> (the index of the
/// one correct choice) or <c>labels</c> (one 0/1 per choice, at least one 1), not both. <c>id</c> (default: the line
/// number), <c>category</c> and <c>group</c> are optional. Each choice is scored as <c>" " + choice</c>.
/// </remarks>
public static class JsonlMultipleChoiceTasks
{
    /// <summary>Loads a task from a JSON Lines file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="name">The task name; default the file name without extension.</param>
    /// <param name="primary">The headline metric.</param>
    /// <returns>The task.</returns>
    /// <exception cref="TaskFormatException">A line is malformed; the message names it.</exception>
    public static MultipleChoiceTask Load(string path, string? name = null, PrimaryMetric primary = PrimaryMetric.Accuracy)
    {
        using var reader = TaskFiles.OpenText(path);
        return Read(reader, path, name ?? Path.GetFileNameWithoutExtension(path), primary);
    }

    internal static MultipleChoiceTask Read(TextReader reader, string source, string name, PrimaryMetric primary)
    {
        var items = new List<MultipleChoiceItem>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (line, obj) in TaskFiles.ReadJsonLines(reader, source))
        {
            if (!obj.TryGetProperty("context", out var ctx) || ctx.ValueKind != JsonValueKind.String)
            {
                throw new TaskFormatException(source, line, "missing the string field \"context\".");
            }
            if (!obj.TryGetProperty("choices", out var cs) || cs.ValueKind != JsonValueKind.Array)
            {
                throw new TaskFormatException(source, line, "missing the array field \"choices\".");
            }
            var choices = new List<string>();
            foreach (var c in cs.EnumerateArray())
            {
                if (c.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(c.GetString()))
                {
                    throw new TaskFormatException(source, line, $"choice {choices.Count} is not a non-empty string.");
                }
                choices.Add(c.GetString()!);
            }
            if (choices.Count < 2)
            {
                throw new TaskFormatException(source, line, $"\"choices\" has {choices.Count} entries; at least 2 are needed.");
            }
            var labels = ReadLabels(obj, choices.Count, source, line);
            string id = TaskFiles.GetOptionalText(obj, "id") ?? "line-" + line.ToString(CultureInfo.InvariantCulture);
            if (!ids.Add(id))
            {
                throw new TaskFormatException(source, line, $"the id \"{id}\" was already used.");
            }
            items.Add(new MultipleChoiceItem(id, ctx.GetString()!, choices, labels,
                TaskFiles.GetOptionalText(obj, "category"), TaskFiles.GetOptionalText(obj, "group")));
        }
        return TaskChecks.Finish(new MultipleChoiceTask(name, items, primary), source);
    }

    private static bool[] ReadLabels(JsonElement obj, int count, string source, int line)
    {
        bool hasGold = obj.TryGetProperty("gold", out var gold);
        bool hasLabels = obj.TryGetProperty("labels", out var labels);
        if (hasGold == hasLabels)
        {
            throw new TaskFormatException(source, line, "give exactly one of \"gold\" (an index) or \"labels\" (0/1 per choice).");
        }
        var result = new bool[count];
        if (hasGold)
        {
            if (gold.ValueKind != JsonValueKind.Number || !gold.TryGetInt32(out int g) || g < 0 || g >= count)
            {
                throw new TaskFormatException(source, line, $"\"gold\" is {gold.GetRawText()}; it must be a choice index from 0 to {count - 1}.");
            }
            result[g] = true;
            return result;
        }
        if (labels.ValueKind != JsonValueKind.Array || labels.GetArrayLength() != count)
        {
            throw new TaskFormatException(source, line, $"\"labels\" must be an array of {count} values (one per choice).");
        }
        int k = 0;
        foreach (var l in labels.EnumerateArray())
        {
            if (l.ValueKind != JsonValueKind.Number || !l.TryGetInt32(out int v) || v is not (0 or 1))
            {
                throw new TaskFormatException(source, line, $"label {k} is {l.GetRawText()}; labels are 0 or 1.");
            }
            result[k++] = v == 1;
        }
        if (!result.Contains(true))
        {
            throw new TaskFormatException(source, line, "\"labels\" marks no choice as correct.");
        }
        return result;
    }
}
