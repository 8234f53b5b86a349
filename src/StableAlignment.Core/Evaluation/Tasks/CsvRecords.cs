using System.Text;

namespace StableAlignment.Core.Evaluation;

/// <summary>One CSV record and the line it starts on.</summary>
internal readonly record struct CsvRecord(int Line, IReadOnlyList<string> Fields);

/// <summary>
/// An RFC 4180 reader: comma separated, double-quoted fields may hold commas, quotes ("") and newlines. Like Python's
/// <c>csv</c> module (which wrote many copies of these datasets), a quote inside an unquoted field is kept as text.
/// </summary>
internal static class CsvRecords
{
    public static IEnumerable<CsvRecord> Read(TextReader reader, string source)
    {
        int line = 1;
        var field = new StringBuilder();
        var fields = new List<string>();
        int recordLine = 1;
        bool inQuotes = false, fieldWasQuoted = false, any = false;
        int ch;
        while ((ch = reader.Read()) != -1)
        {
            char c = (char)ch;
            if (inQuotes)
            {
                if (c == '"')
                {
                    if (reader.Peek() == '"')
                    {
                        reader.Read();
                        field.Append('"');
                    }
                    else
                    {
                        inQuotes = false;
                    }
                }
                else
                {
                    if (c == '\n')
                    {
                        line++;
                    }
                    field.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '"' when field.Length == 0 && !fieldWasQuoted:
                    inQuotes = fieldWasQuoted = any = true;
                    break;
                case '"' when fieldWasQuoted:
                    throw new TaskFormatException(source, line, "a double quote right after a quoted field (inside quotes, write a quote as \"\").");
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    fieldWasQuoted = false;
                    any = true;
                    break;
                case '\r':
                    break;
                case '\n':
                    if (any || field.Length > 0)
                    {
                        fields.Add(field.ToString());
                        yield return new CsvRecord(recordLine, fields.ToArray());
                    }
                    fields.Clear();
                    field.Clear();
                    fieldWasQuoted = any = false;
                    line++;
                    recordLine = line;
                    break;
                default:
                    if (fieldWasQuoted)
                    {
                        throw new TaskFormatException(source, line, "text after the closing quote of a quoted field.");
                    }
                    field.Append(c);
                    any = true;
                    break;
            }
        }
        if (inQuotes)
        {
            throw new TaskFormatException(source, recordLine, "a quoted field is never closed.");
        }
        if (any || field.Length > 0)
        {
            fields.Add(field.ToString());
            yield return new CsvRecord(recordLine, fields.ToArray());
        }
    }
}

/// <summary>A CSV file with a header row, read into records whose fields are looked up by column name.</summary>
internal sealed class CsvTable
{
    private readonly Dictionary<string, int> _columns;

    private CsvTable(string source, Dictionary<string, int> columns, IReadOnlyList<CsvRecord> rows)
    {
        Source = source;
        _columns = columns;
        Rows = rows;
    }

    public string Source { get; }

    public IReadOnlyList<CsvRecord> Rows { get; }

    /// <summary>Reads a CSV with a header row and checks that the required columns are present.</summary>
    public static CsvTable Read(TextReader reader, string source, params string[] requiredColumns)
    {
        var records = CsvRecords.Read(reader, source).ToList();
        if (records.Count == 0)
        {
            throw new TaskFormatException(source, 0, "the file is empty (a header row is expected).");
        }
        var header = records[0];
        var columns = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < header.Fields.Count; i++)
        {
            columns.TryAdd(header.Fields[i].Trim(), i);
        }
        foreach (var name in requiredColumns)
        {
            if (!columns.ContainsKey(name))
            {
                throw new TaskFormatException(source, header.Line,
                    $"the header has no '{name}' column (found: {Serialization.UserText.ExcerptList(header.Fields)}).");
            }
        }
        for (int r = 1; r < records.Count; r++)
        {
            if (records[r].Fields.Count != header.Fields.Count)
            {
                throw new TaskFormatException(source, records[r].Line,
                    $"the row has {records[r].Fields.Count} fields but the header has {header.Fields.Count}.");
            }
        }
        return new CsvTable(source, columns, records.Skip(1).ToArray());
    }

    public bool HasColumn(string name) => _columns.ContainsKey(name);

    public string Get(CsvRecord row, string column) => row.Fields[_columns[column]];

    public string? GetOptional(CsvRecord row, string column) =>
        _columns.TryGetValue(column, out int i) ? row.Fields[i] : null;

    /// <summary>Reads a non-empty text field.</summary>
    public string GetText(CsvRecord row, string column)
    {
        string value = Get(row, column);
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new TaskFormatException(Source, row.Line, $"the '{column}' field is empty.");
        }
        return value;
    }

    /// <summary>Reads an integer field that must be one of <paramref name="allowed"/>.</summary>
    public int GetInt(CsvRecord row, string column, params int[] allowed)
    {
        string text = Get(row, column).Trim();
        if (!int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int value)
            || (allowed.Length > 0 && Array.IndexOf(allowed, value) < 0))
        {
            throw new TaskFormatException(Source, row.Line,
                $"the '{column}' field is '{text}'; expected one of {string.Join(", ", allowed)}.");
        }
        return value;
    }
}
