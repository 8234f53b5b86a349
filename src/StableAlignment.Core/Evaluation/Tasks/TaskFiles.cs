using System.Text;
using System.Text.Json;

namespace StableAlignment.Core.Evaluation;

/// <summary>The file-reading steps every task loader shares: open, read JSON Lines, read a JSON array with line numbers.</summary>
internal static class TaskFiles
{
    /// <summary>Opens a UTF-8 text file, with a clear error when it is missing.</summary>
    public static StreamReader OpenText(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Task file not found: {path}", path);
        }
        return new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
    }

    /// <summary>Reads JSON Lines: one object per non-blank line, each with its 1-based line number.</summary>
    public static IEnumerable<(int Line, JsonElement Value)> ReadJsonLines(TextReader reader, string source)
    {
        int lineNumber = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            JsonElement value;
            try
            {
                using var doc = JsonDocument.Parse(line);
                value = doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new TaskFormatException(source, lineNumber, $"not valid JSON ({e.Message}).", e);
            }
            if (value.ValueKind != JsonValueKind.Object)
            {
                throw new TaskFormatException(source, lineNumber, $"expected a JSON object, found {value.ValueKind}.");
            }
            yield return (lineNumber, value);
        }
    }

    /// <summary>Reads a JSON array of objects, giving each element the 1-based line on which it starts.</summary>
    public static IReadOnlyList<(int Line, JsonElement Value)> ReadJsonArray(byte[] utf8, string source)
    {
        var items = new List<(int, JsonElement)>();
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        int line = 1;
        long counted = 0;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
            {
                throw new TaskFormatException(source, 1, "expected a JSON array of items.");
            }
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                long start = reader.TokenStartIndex;
                line += utf8.AsSpan((int)counted, (int)(start - counted)).Count((byte)'\n');
                counted = start;
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    throw new TaskFormatException(source, line, $"expected a JSON object, found {reader.TokenType}.");
                }
                using var doc = JsonDocument.ParseValue(ref reader);
                items.Add((line, doc.RootElement.Clone()));
            }
        }
        catch (JsonException e)
        {
            int at = e.LineNumber is long l ? (int)l + 1 : line;
            throw new TaskFormatException(source, at, $"not valid JSON ({e.Message}).", e);
        }
        return items;
    }

    /// <summary>Reads a required string property.</summary>
    public static string GetString(JsonElement obj, string name, string source, int line)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.String)
        {
            throw new TaskFormatException(source, line, $"missing the string field \"{name}\".");
        }
        string text = value.GetString()!;
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new TaskFormatException(source, line, $"the field \"{name}\" is empty.");
        }
        return text;
    }

    /// <summary>Reads an optional string (or number, as text) property.</summary>
    public static string? GetOptionalText(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) ? value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number => value.GetRawText(),
            _ => null,
        } : null;

    /// <summary>Python's <c>str.capitalize</c>: first character upper case, the rest lower case.</summary>
    public static string Capitalize(string text) =>
        text.Length == 0 ? text : string.Concat(char.ToUpperInvariant(text[0]).ToString(), text[1..].ToLowerInvariant());
}

/// <summary>The checks every loader runs on what it built, turned into file-level errors.</summary>
internal static class TaskChecks
{
    public static MultipleChoiceTask Finish(MultipleChoiceTask task, string source)
    {
        if (task.Items.Count == 0)
        {
            throw new TaskFormatException(source, 0, "the file holds no items.");
        }
        try
        {
            task.Validate();
        }
        catch (ArgumentException e)
        {
            throw new TaskFormatException(source, 0, e.Message, e);
        }
        return task;
    }
}
