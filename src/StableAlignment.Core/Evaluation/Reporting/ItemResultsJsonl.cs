using System.Text;
using System.Text.Json;
using StableAlignment.Core.Serialization;

namespace StableAlignment.Core.Evaluation;

/// <summary>
/// Per-item results as JSON Lines: one object per item with the inputs, the raw log-likelihoods and the metrics, so a
/// run can be audited and rescored later without the model.
/// </summary>
/// <remarks>
/// Fields: <c>model</c>, <c>task</c>, <c>primary</c>, <c>tie_breaking</c>, <c>id</c>, <c>category</c>, <c>group</c>,
/// <c>context</c> (null when not kept), <c>choices</c>, <c>labels</c> (0/1), <c>loglikelihoods</c> (numbers; the string
/// <c>"-Infinity"</c> for an impossible choice), <c>token_counts</c> (optional), and the metrics as scored: <c>acc</c>,
/// <c>acc_norm</c>, <c>acc_bytes</c>, <c>mc2</c>, <c>brier</c>. Reading recomputes the metrics from the log-likelihoods,
/// so reading what was written reproduces the report exactly (doubles are written round-trippable).
/// </remarks>
public static class ItemResultsJsonl
{
    // Text is written as is (UTF-8, astral characters included); only what JSON requires is escaped.
    private static readonly JsonWriterOptions WriterOptions = PlainTextJsonEncoder.WriterOptions;

    /// <summary>Writes results to a JSON Lines file (overwriting it).</summary>
    /// <param name="path">The file.</param>
    /// <param name="results">The results of any models and tasks.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the file is written.</returns>
    public static async Task WriteAsync(string path, IEnumerable<TaskResults> results, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(results);
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        await using (stream.ConfigureAwait(false))
        {
            foreach (var r in results)
            {
                foreach (var item in r.Items)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    byte[] line = Serialize(r, item);
                    await stream.WriteAsync(line, cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Serialises results to JSON Lines text.</summary>
    /// <param name="results">The results.</param>
    /// <returns>The text, one line per item.</returns>
    public static string ToJsonLines(IEnumerable<TaskResults> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var sb = new StringBuilder();
        foreach (var r in results)
        {
            foreach (var item in r.Items)
            {
                sb.Append(Encoding.UTF8.GetString(Serialize(r, item)));
            }
        }
        return sb.ToString();
    }

    private static byte[] Serialize(TaskResults r, ItemResult item)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("model", item.Model);
            w.WriteString("task", item.Task);
            w.WriteString("primary", r.Primary.ToString());
            w.WriteString("tie_breaking", r.TieBreaking.ToString());
            w.WriteString("id", item.Id);
            w.WriteString("category", item.Category);
            w.WriteString("group", item.Group);
            w.WriteString("context", item.Context);
            w.WriteStartArray("choices");
            foreach (var c in item.Choices)
            {
                w.WriteStringValue(c);
            }
            w.WriteEndArray();
            w.WriteStartArray("labels");
            foreach (var l in item.Labels)
            {
                w.WriteNumberValue(l ? 1 : 0);
            }
            w.WriteEndArray();
            w.WriteStartArray("loglikelihoods");
            foreach (var s in item.LogLikelihoods)
            {
                if (double.IsNegativeInfinity(s))
                {
                    w.WriteStringValue("-Infinity");
                }
                else
                {
                    w.WriteNumberValue(s);
                }
            }
            w.WriteEndArray();
            if (item.TokenCounts is { } tokens)
            {
                w.WriteStartArray("token_counts");
                foreach (var t in tokens)
                {
                    if (t is int v) { w.WriteNumberValue(v); } else { w.WriteNullValue(); }
                }
                w.WriteEndArray();
            }
            w.WriteBoolean("acc", item.Metrics.Accuracy);
            w.WriteBoolean("acc_norm", item.Metrics.AccuracyNormalized);
            w.WriteBoolean("acc_bytes", item.Metrics.AccuracyBytes);
            w.WriteNumber("mc2", item.Metrics.TrueProbabilityMass);
            w.WriteNumber("brier", item.Metrics.Brier);
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    /// <summary>Reads per-item results and recomputes their metrics.</summary>
    /// <param name="path">A file written by <see cref="WriteAsync"/> (or by hand in the same format).</param>
    /// <param name="tieBreaking">Rescore under this tie rule; null keeps each line's own.</param>
    /// <returns>One <see cref="TaskResults"/> per model and task, in order of first appearance.</returns>
    /// <exception cref="TaskFormatException">A line is malformed; the message names it.</exception>
    public static IReadOnlyList<TaskResults> Read(string path, TieBreaking? tieBreaking = null)
    {
        using var reader = TaskFiles.OpenText(path);
        return Read(reader, path, tieBreaking);
    }

    internal static IReadOnlyList<TaskResults> Read(TextReader reader, string source, TieBreaking? tieBreaking)
    {
        var groups = new List<(string Model, string Task, PrimaryMetric Primary, TieBreaking Ties, List<ItemResult> Items)>();
        foreach (var (line, obj) in TaskFiles.ReadJsonLines(reader, source))
        {
            string model = TaskFiles.GetString(obj, "model", source, line);
            string task = TaskFiles.GetString(obj, "task", source, line);
            var primary = ParseEnum<PrimaryMetric>(obj, "primary", source, line);
            var ties = tieBreaking ?? ParseEnum<TieBreaking>(obj, "tie_breaking", source, line);
            var choices = ReadArray(obj, "choices", source, line, e => (e.ValueKind == JsonValueKind.String, e.ValueKind == JsonValueKind.String ? e.GetString()! : ""));
            var labels = ReadArray(obj, "labels", source, line, e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) && v is 0 or 1 ? (true, v == 1) : (false, false));
            var scores = ReadArray(obj, "loglikelihoods", source, line, ReadScore);
            List<int?>? tokens = null;
            if (obj.TryGetProperty("token_counts", out var tc) && tc.ValueKind == JsonValueKind.Array)
            {
                tokens = tc.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) ? v : (int?)null).ToList();
            }
            ItemMetrics metrics;
            try
            {
                metrics = ItemMetrics.Compute(choices, labels, scores, ties);
            }
            catch (ArgumentException e)
            {
                throw new TaskFormatException(source, line, e.Message, e);
            }
            var item = new ItemResult
            {
                Model = model,
                Task = task,
                Id = TaskFiles.GetString(obj, "id", source, line),
                Category = TaskFiles.GetOptionalText(obj, "category"),
                Group = TaskFiles.GetOptionalText(obj, "group"),
                Context = TaskFiles.GetOptionalText(obj, "context"),
                Choices = choices,
                Labels = labels,
                LogLikelihoods = scores,
                TokenCounts = tokens,
                Metrics = metrics,
            };
            int g = groups.FindIndex(x => x.Model == model && x.Task == task);
            if (g < 0)
            {
                groups.Add((model, task, primary, ties, [item]));
            }
            else if (groups[g].Primary != primary || groups[g].Ties != ties)
            {
                throw new TaskFormatException(source, line, $"model '{model}', task '{task}': the primary metric or tie rule differs from earlier lines.");
            }
            else
            {
                groups[g].Items.Add(item);
            }
        }
        if (groups.Count == 0)
        {
            throw new TaskFormatException(source, 0, "the file holds no results.");
        }
        return groups.Select(g => new TaskResults(g.Task, g.Primary, g.Ties, g.Items) { Model = g.Model }).ToArray();
    }

    private static (bool, double) ReadScore(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => (true, e.GetDouble()),
        JsonValueKind.String when e.GetString() == "-Infinity" => (true, double.NegativeInfinity),
        _ => (false, 0),
    };

    private static List<T> ReadArray<T>(JsonElement obj, string name, string source, int line, Func<JsonElement, (bool Ok, T Value)> read)
    {
        if (!obj.TryGetProperty(name, out var array) || array.ValueKind != JsonValueKind.Array)
        {
            throw new TaskFormatException(source, line, $"missing the array field \"{name}\".");
        }
        var list = new List<T>();
        foreach (var e in array.EnumerateArray())
        {
            var (ok, value) = read(e);
            list.Add(ok ? value : throw new TaskFormatException(source, line, $"\"{name}\" holds the invalid value {e.GetRawText()}."));
        }
        return list;
    }

    private static T ParseEnum<T>(JsonElement obj, string name, string source, int line)
        where T : struct, Enum
    {
        string text = TaskFiles.GetString(obj, name, source, line);
        return Enum.TryParse<T>(text, ignoreCase: false, out var value) && Enum.IsDefined(value)
            ? value
            : throw new TaskFormatException(source, line, $"\"{name}\" is \"{text}\"; expected one of {string.Join(", ", Enum.GetNames<T>())}.");
    }
}
